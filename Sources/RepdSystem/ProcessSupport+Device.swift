#if canImport(Glibc)
import Glibc
#endif
import CRepdSystem
import SystemPackage

/// Descriptors, directories, mounts and small files, for attaching a block device.
extension ProcessSupport {
    /// Online processors.
    public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    public static func closeDescriptor(_ fd: Int32) { _ = close(fd) }

    /// Keeps a descriptor out of the programs this process starts.
    public static func setCloseOnExec(_ fd: Int32) { _ = crepd_set_cloexec(fd) }

    /// A connected pair of unix stream sockets (close-on-exec).
    public static func socketPair() throws(SystemError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        _ = try retryingEINTR("socketpair") { crepd_socketpair_stream(&fds) }
        return (fds[0], fds[1])
    }

    public static func sleep(milliseconds: Int) {
        usleep(useconds_t(milliseconds * 1000))
    }

    /// Removes an empty directory; does nothing otherwise.
    public static func removeDirectory(_ path: String) {
        _ = rmdir(path)
    }

    /// umount(2); nil on success, else the error.
    public static func unmount(_ path: String) -> SystemError? {
        umount(path) == 0 ? nil : SystemError("umount", path, errno: Errno(rawValue: Glibc.errno))
    }

    /// umount2(MNT_DETACH): gone from the namespace at once, released when no longer used.
    public static func unmountLazily(_ path: String) -> SystemError? {
        crepd_umount_lazy(path) == 0 ? nil : SystemError("umount -l", path, errno: Errno(rawValue: Glibc.errno))
    }

    public static func terminate(_ pid: Int32) { _ = kill(pid, SIGTERM) }

    /// Replaces a small file's content (write to a temporary file, rename).
    public static func writeTextFile(_ path: String, _ text: String) throws(SystemError) {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = try retryingEINTR("open", temporary) { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else {
            _ = unlink(temporary)
            throw SystemError("write", temporary, errno: .ioError)
        }
        if rename(temporary, path) != 0 {
            let code = Glibc.errno
            _ = unlink(temporary)
            throw SystemError("rename", path, errno: Errno(rawValue: code))
        }
    }
}

extension BlockFile {
    /// The size of a regular file (stat), nil if it cannot be stat'ed.
    public static func sizeOfFile(_ path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_size)
    }
}
