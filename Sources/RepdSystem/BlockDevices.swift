#if canImport(Glibc)
import Glibc
#endif
import CRepdSystem
import SystemPackage

/// Small files and directories of sysfs and procfs, read whole.
public enum SysFS {
    /// The file's text without the trailing newline; nil if it cannot be read.
    public static func read(_ path: String, limit: Int = 1 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        var text = String(decoding: bytes, as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// Writes a sysfs attribute; false if it cannot be written.
    @discardableResult
    public static func write(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    /// The names in a directory (without `.` and `..`), sorted; empty if it cannot be read.
    public static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The target of a symbolic link, nil if `path` is not one.
    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A block device's number (`major:minor`).
public struct BlockDeviceNumber: Sendable, Hashable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    /// "8:16".
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else { return nil }
        self.init(major: major, minor: minor)
    }

    /// The number of the block device node at `path` (symlinks followed); nil if it is not one.
    public static func of(path: String) -> BlockDeviceNumber? {
        var dev: UInt64 = 0
        guard crepd_block_device_number(path, &dev) == 0 else { return nil }
        return BlockDeviceNumber(major: crepd_major(dev), minor: crepd_minor(dev))
    }

    public var description: String { "\(major):\(minor)" }

    /// The kernel's name for it (`nbd0`, `loop3`, `dm-1`, `sda2`), from `/sys/dev/block/M:m`.
    public var kernelName: String? {
        SysFS.readLink("/sys/dev/block/\(self)").map { String($0.split(separator: "/").last ?? "") }
    }
}

/// One line of `/proc/self/mountinfo`: what is mounted where.
public struct MountEntry: Sendable, Hashable {
    public var device: BlockDeviceNumber
    public var mountPoint: String
    public var fileSystem: String
    public var source: String

    /// Parses one mountinfo line: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`.
    public init?(mountinfoLine line: some StringProtocol) {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 7, let device = BlockDeviceNumber(fields[2]),
              let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count
        else { return nil }
        self.device = device
        self.mountPoint = Self.unescape(fields[4])
        self.fileSystem = String(fields[dash + 1])
        self.source = Self.unescape(fields[dash + 2])
    }

    public init(device: BlockDeviceNumber, mountPoint: String, fileSystem: String, source: String) {
        self.device = device
        self.mountPoint = mountPoint
        self.fileSystem = fileSystem
        self.source = source
    }

    /// mountinfo writes space, tab, newline and backslash as `\040` and so on.
    static func unescape(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 4 <= bytes.count,
               let value = UInt8(String(decoding: bytes[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8) {
                out.append(value)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func parse(mountinfo text: String) -> [MountEntry] {
        text.split(separator: "\n").compactMap { MountEntry(mountinfoLine: $0) }
    }

    /// What is mounted in this process's mount namespace.
    public static func current() -> [MountEntry] {
        parse(mountinfo: SysFS.read("/proc/self/mountinfo") ?? "")
    }
}

/// Something that keeps a block device busy: a mount, a device stacked on it (dm, md, ...), swap.
public struct BlockDeviceUser: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable { case mount, holder, swap }
    public var kind: Kind
    /// The device that is used (the device itself, a partition of it, or a holder further up).
    public var device: String
    /// What uses it: the mount point, the holder's name (`dm-0 (vg-lv)`), the swap entry.
    public var user: String
    public var detail: String

    public var description: String {
        switch kind {
        case .mount: "\(device) is mounted on \(user)\(detail.isEmpty ? "" : " (\(detail))")"
        case .holder: "\(device) is held by \(user)\(detail.isEmpty ? "" : " (\(detail))")"
        case .swap: "\(device) is in use as swap"
        }
    }
}

/// Block device services: who uses a device, its read-only flag, flushing its buffers.
public enum BlockDevices {
    /// The partitions of a whole device (`nbd0p1`, ...), by kernel name.
    public static func partitions(of name: String) -> [String] {
        SysFS.list("/sys/block/\(name)").filter { ProcessSupport.fileExists("/sys/block/\(name)/\($0)/partition") }
    }

    /// The devices stacked directly on `name` (`/sys/class/block/NAME/holders`).
    public static func holders(of name: String) -> [String] {
        SysFS.list("/sys/class/block/\(name)/holders")
    }

    /// A device-mapper device's name (`vg-lv` for `dm-0`).
    public static func mapperName(of name: String) -> String? {
        SysFS.read("/sys/class/block/\(name)/dm/name")
    }

    static func number(ofKernelName name: String) -> BlockDeviceNumber? {
        SysFS.read("/sys/class/block/\(name)/dev").flatMap { BlockDeviceNumber($0) }
    }

    /// Everything that uses the device `name` (kernel name), its partitions, and the devices stacked
    /// on them, recursively: mounts, holders, swap. Empty when nothing does.
    public static func users(of name: String, mounts: [MountEntry] = MountEntry.current()) -> [BlockDeviceUser] {
        var users: [BlockDeviceUser] = []
        var seen = Set<String>()
        let swaps = swapDevices()
        func visit(_ device: String, via: String?) {
            guard seen.insert(device).inserted else { return }
            let shown = "/dev/\(device)" + (via.map { " (via \($0))" } ?? "")
            if let number = number(ofKernelName: device) {
                for mount in mounts where mount.device == number {
                    users.append(BlockDeviceUser(kind: .mount, device: shown, user: mount.mountPoint, detail: mount.fileSystem))
                }
                if swaps.contains(number) {
                    users.append(BlockDeviceUser(kind: .swap, device: shown, user: "swap", detail: ""))
                }
            }
            for part in partitions(of: device) { visit(part, via: via) }
            for holder in holders(of: device) {
                let label = mapperName(of: holder).map { "\(holder) \($0)" } ?? holder
                users.append(BlockDeviceUser(kind: .holder, device: shown, user: holder, detail: mapperName(of: holder) ?? ""))
                visit(holder, via: label)
            }
        }
        visit(name, via: nil)
        return users
    }

    /// The devices listed in `/proc/swaps`.
    static func swapDevices() -> Set<BlockDeviceNumber> {
        let lines = (SysFS.read("/proc/swaps") ?? "").split(separator: "\n").dropFirst()
        return Set(lines.compactMap { line in
            line.split(separator: " ").first.flatMap { BlockDeviceNumber.of(path: String($0)) }
        })
    }

    /// Sets or clears the device's read-only flag (BLKROSET): opens for writing and write(2)
    /// fail with EPERM/EROFS while it is set; mounts become read-only.
    public static func setReadOnly(_ path: String, _ readOnly: Bool) throws(SystemError) {
        let fd = try retryingEINTR("open", path) { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        defer { close(fd) }
        _ = try retryingEINTR("ioctl(BLKROSET)", path) { crepd_blk_set_readonly(fd, readOnly ? 1 : 0) }
    }

    public static func isReadOnly(_ path: String) -> Bool? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var value: Int32 = 0
        return crepd_blk_get_readonly(fd, &value) == 0 ? value != 0 : nil
    }

    /// Writes the device's dirty cached pages and drops its cache (BLKFLSBUF), so that nothing
    /// written before stays behind and nothing read before is served stale afterwards.
    public static func flushBuffers(_ path: String) throws(SystemError) {
        let fd = try retryingEINTR("open", path) { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        defer { close(fd) }
        _ = try retryingEINTR("ioctl(BLKFLSBUF)", path) { crepd_blk_flush_buffers(fd) }
    }

    /// The largest discard the block layer sends the device in one request
    /// (`queue/discard_max_bytes`), nil if unknown.
    public static func discardLimit(of name: String) -> UInt64? {
        SysFS.read("/sys/block/\(name)/queue/discard_max_bytes").flatMap { UInt64($0) }
    }

    /// Sets `queue/discard_max_bytes` (the kernel refuses more than the driver allows).
    @discardableResult
    public static func setDiscardLimit(of name: String, bytes: UInt64) -> Bool {
        SysFS.write("/sys/block/\(name)/queue/discard_max_bytes", "\(bytes)")
    }

    /// The size in bytes (BLKGETSIZE64); nil if it cannot be read.
    public static func size(_ path: String) -> UInt64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: UInt64 = 0
        return crepd_blk_size(fd, &bytes) == 0 ? bytes : nil
    }
}

/// The device links repd makes (`/dev/drbd1 -> nbd0`, `/dev/repd/by-res/r0 -> ../../nbd0`).
public enum DeviceLink {
    public enum State: Sendable, Equatable {
        case absent
        /// A symbolic link, to this target.
        case link(String)
        /// Something else: a device node, a file, a directory. repd never replaces it.
        case other
    }

    public static func state(_ path: String) -> State {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .absent }
        if st.st_mode & S_IFMT == S_IFLNK { return .link(SysFS.readLink(path) ?? "") }
        return .other
    }

    /// Makes `path` a symbolic link to `target`, atomically replacing a link that is there (never
    /// anything else). Creates the parent directories.
    public static func create(_ path: String, pointingTo target: String) throws(SystemError) {
        if case .other = state(path) {
            throw SystemError("symlink", "\(path) (exists and is not a symbolic link; repd does not replace it)", errno: .fileExists)
        }
        let parent = path.split(separator: "/").dropLast().joined(separator: "/")
        if !parent.isEmpty { try ProcessSupport.makeDirectory("/" + parent) }
        let temporary = "\(path).repd-\(getpid())"
        _ = unlink(temporary)
        _ = try retryingEINTR("symlink", temporary) { symlink(target, temporary) }
        if rename(temporary, path) != 0 {
            let code = Glibc.errno
            _ = unlink(temporary)
            throw SystemError("rename", "\(temporary) to \(path)", errno: Errno(rawValue: code))
        }
    }

    /// Removes `path` if it is a symbolic link (to `target`, when given). Returns whether it did.
    @discardableResult
    public static func remove(_ path: String, ifPointingTo target: String? = nil) -> Bool {
        guard case .link(let current) = state(path) else { return false }
        if let target, current != target { return false }
        return unlink(path) == 0
    }

    /// A relative target for a link at `path` to `/dev/NAME` (`../../nbd0` from `/dev/repd/by-res/r0`).
    public static func relativeTarget(from path: String, toDevice name: String) -> String {
        let depth = path.split(separator: "/").count - 2          // directories below /dev
        guard path.hasPrefix("/dev/"), depth >= 0 else { return "/dev/\(name)" }
        return String(repeating: "../", count: depth) + name
    }
}
