#if canImport(Glibc)
import Glibc
#endif
import CRepdSystem
import SystemPackage

/// Process-level system services: host name, randomness, clocks, signals, pid files, spawning.
public enum ProcessSupport {
    public static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        return String(cString: buf)
    }

    public static func randomUInt64() -> UInt64 {
        var value: UInt64 = 0
        while crepd_getrandom(&value, 8) != 8 {}
        return value
    }

    public static func unixTime() -> UInt64 { UInt64(time(nil)) }

    /// Monotonic clock in nanoseconds.
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// An environment variable, nil when unset or empty.
    public static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let s = String(cString: value)
        return s.isEmpty ? nil : s
    }

    public static var currentPID: Int32 { getpid() }

    public static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || Glibc.errno == EPERM
    }

    public static func sendSignal(_ signal: Int32, to pid: Int32) {
        _ = kill(pid, signal)
    }

    /// Ignores a signal (a dispatch source then receives it instead of the default action).
    public static func ignoreSignal(_ number: Int32) {
        signal(number, SIG_IGN)
    }

    public static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    public static func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Creates `path` and its missing parents (0755). `mode`: the mode of `path` itself when this
    /// call creates it, whatever the umask (an existing directory keeps its mode).
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        let parts = path.split(separator: "/")
        for (index, part) in parts.enumerated() {
            prefix += "/" + part
            let last = index == parts.count - 1
            if mkdir(prefix, last ? mode : 0o755) == 0 {
                if last && chmod(prefix, mode) != 0 { throw SystemError("chmod", prefix, errno: Errno(rawValue: Glibc.errno)) }
            } else if Glibc.errno != EEXIST {
                throw SystemError("mkdir", prefix, errno: Errno(rawValue: Glibc.errno))
            }
        }
    }

    /// Gives the socket bound at `temporary` its mode (and group), then renames it to `path`: a
    /// client never finds `path` with the mode the umask gave the socket at bind.
    public static func publishSocket(_ temporary: String, as path: String, mode: mode_t, group: gid_t? = nil) throws(SystemError) {
        if let group, chown(temporary, uid_t.max, group) != 0 { throw SystemError("chown", temporary, errno: Errno(rawValue: Glibc.errno)) }
        if chmod(temporary, mode) != 0 { throw SystemError("chmod", temporary, errno: Errno(rawValue: Glibc.errno)) }
        if rename(temporary, path) != 0 { throw SystemError("rename", temporary, errno: Errno(rawValue: Glibc.errno)) }
    }

    /// The id of group `name`, or nil when there is none.
    public static func groupID(_ name: String) -> gid_t? {
        var group = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &group, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return group.gr_gid
    }

    /// Adds search (x) permission for group and others to a directory, so that a socket in it can
    /// be reached by those its own mode lets in. Returns whether it changed anything.
    public static func allowTraversal(_ path: String) throws(SystemError) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { throw SystemError("stat", path, errno: Errno(rawValue: Glibc.errno)) }
        let mode = info.st_mode & 0o7777
        guard mode & 0o011 != 0o011 else { return false }
        if chmod(path, mode | 0o011) != 0 { throw SystemError("chmod", path, errno: Errno(rawValue: Glibc.errno)) }
        return true
    }

    public static func removeFile(_ path: String) {
        _ = unlink(path)
    }

    public static func readTextFile(_ path: String, limit: Int = 1 << 20) throws(SystemError) -> String {
        let file = try BlockFile.open(path, access: .readOnly)
        defer { file.close() }
        let size = Int(min(try file.size(), UInt64(limit)))
        let bytes = try file.read(count: size, at: 0)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `2026-12-07T10:00:00Z` for seconds since the Unix epoch.
    public static func utcText(_ seconds: UInt64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    /// Absolute path of the running executable.
    public static func executablePath() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        return n > 0 ? String(cString: buf) : CommandLine.arguments[0]
    }

    /// Resolves a path to an absolute one (the file need not exist).
    public static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return path }
        let cwd = String(cString: buf)
        return cwd == "/" ? "/" + path : cwd + "/" + path
    }
}

/// A pid file held with an exclusive lock for the life of the daemon.
///
/// The lock, not the file's existence, says whether a daemon runs: a stale file left by
/// a crash is simply taken over.
public final class PIDFile: Sendable {
    public let path: String
    private let fd: Int32

    public enum LockResult: Sendable {
        case acquired(PIDFile)
        case heldBy(pid: Int32?)
    }

    public static func acquire(_ path: String) throws(SystemError) -> LockResult {
        let fd = try retryingEINTR("open", path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = Glibc.errno
            defer { close(fd) }
            if code == EWOULDBLOCK {
                return .heldBy(pid: readPID(fd: fd))
            }
            throw SystemError("flock", path, errno: Errno(rawValue: code))
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return .acquired(PIDFile(path: path, fd: fd))
    }

    /// The pid of a running daemon holding this file's lock, or nil when none holds it.
    public static func runningPID(_ path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        return readPID(fd: fd) ?? -1
    }

    private static func readPID(fd: Int32) -> Int32? {
        var buf = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &buf, 31, 0)
        guard n > 0 else { return nil }
        return Int32(String(decoding: buf[0..<n], as: UTF8.self).trimmingWhitespace())
    }

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Removes the file and drops the lock.
    public func release() {
        unlink(path)
        close(fd)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

extension ProcessSupport {
    public static func writeStandardError(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

extension ProcessSupport {
    /// The current UTC time as ISO 8601 with milliseconds.
    public static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = Int(ts.tv_nsec / 1_000_000)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(msText)Z"
    }
}

extension ProcessSupport {
    /// The daemon's threads share a few malloc arenas instead of one each: less memory kept
    /// around for little contention (the data path allocates little).
    public static func limitMallocArenas(_ count: Int32 = 2) {
        crepd_limit_malloc_arenas(count)
    }
}
