#if canImport(Glibc)
import Glibc
#endif
import CRepdSystem
import SystemPackage

/// A loop device bound to a file, held open for as long as this value lives.
///
/// `detach()` unbinds it (LOOP_CLR_FD: at once when nobody else has it open, else when its last
/// user, a mount or a dm table, lets go). With `autoclear` the kernel also unbinds it when the
/// last descriptor closes, e.g. when the process holding it died.
public final class LoopDevice: @unchecked Sendable {
    public let index: Int
    public let backingFile: String
    private var fd: Int32

    public var path: String { "/dev/loop\(index)" }

    private init(index: Int, backingFile: String, fd: Int32) {
        self.index = index
        self.backingFile = backingFile
        self.fd = fd
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Binds `file` to a free loop device. `name` is recorded as the loop's `lo_file_name`
    /// (`losetup -l` shows the backing file; the name says who set it up).
    public static func attach(file: String, name: String, blockSize: UInt32 = 512, directIO: Bool = false, autoclear: Bool = true) throws(SystemError) -> LoopDevice {
        let backing = try retryingEINTR("open", file) { open(file, O_RDWR | O_CLOEXEC) }
        defer { close(backing) }
        let control = try retryingEINTR("open", "/dev/loop-control") { open("/dev/loop-control", O_RDWR | O_CLOEXEC) }
        defer { close(control) }
        var flags: UInt32 = autoclear ? crepd_lo_flags_autoclear() : 0
        if directIO { flags |= crepd_lo_flags_direct_io() }
        // Another process may take the free device between GET_FREE and the bind: try again.
        var lastError = SystemError("loop attach", file, errno: .resourceBusy)
        for _ in 0..<16 {
            let index = try retryingEINTR("ioctl(LOOP_CTL_GET_FREE)", "/dev/loop-control") { crepd_loop_get_free(control) }
            let path = "/dev/loop\(index)"
            let fd = try retryingEINTR("open", path) { open(path, O_RDWR | O_CLOEXEC) }
            if crepd_loop_configure(fd, backing, flags, blockSize, name) == 0 {
                return LoopDevice(index: Int(index), backingFile: file, fd: fd)
            }
            var code = Glibc.errno
            if code == EINVAL || code == ENOTTY {
                // Before Linux 5.8 (no LOOP_CONFIGURE): bind, then set the flags.
                if crepd_loop_set_fd(fd, backing) == 0 {
                    if crepd_loop_set_status(fd, flags, name) == 0 {
                        return LoopDevice(index: Int(index), backingFile: file, fd: fd)
                    }
                    code = Glibc.errno
                    _ = crepd_loop_clear(fd)
                } else {
                    code = Glibc.errno
                }
            }
            close(fd)
            lastError = SystemError("loop attach", "\(file) to \(path)", errno: Errno(rawValue: code))
            if code != EBUSY { throw lastError }
        }
        throw lastError
    }

    /// Asks the kernel to unbind the device (at once if nobody uses it, else when the last user
    /// closes it) and closes our descriptor.
    public func detach() {
        guard fd >= 0 else { return }
        _ = crepd_loop_clear(fd)
        close(fd)
        fd = -1
    }

    /// Unbinds loop device `index` (LOOP_CLR_FD), e.g. one a crashed process left bound.
    public static func clear(index: Int) throws(SystemError) {
        let path = "/dev/loop\(index)"
        let fd = try retryingEINTR("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        _ = try retryingEINTR("ioctl(LOOP_CLR_FD)", path) { crepd_loop_clear(fd) }
    }

    /// The file a loop device is bound to (`/sys/block/loopN/loop/backing_file`), nil if unbound.
    public static func backingFile(ofLoop index: Int) -> String? {
        SysFS.read("/sys/block/loop\(index)/loop/backing_file")
    }

    /// The loop devices bound to `file` (e.g. to find who else sees a backing file).
    public static func devices(backedBy file: String) -> [String] {
        SysFS.list("/sys/block").compactMap { name -> String? in
            guard name.hasPrefix("loop"), let index = Int(name.dropFirst(4)),
                  let backing = backingFile(ofLoop: index) else { return nil }
            // The kernel appends " (deleted)" when the file was removed.
            return backing == file || backing == file + " (deleted)" ? "/dev/\(name)" : nil
        }
    }
}
