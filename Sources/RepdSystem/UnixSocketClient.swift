#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// A blocking client for a unix stream socket, for the CLI's short request/reply exchanges.
public struct UnixSocketClient: ~Copyable {
    private let fd: Int32
    public let path: String

    public init(connectingTo path: String, timeoutSeconds: Int = 30) throws(SystemError) {
        let fd = try retryingEINTR("socket", path) { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw SystemError("connect", "\(path) (path too long for a unix socket)", errno: .fileNameTooLong)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let code = Glibc.errno
            close(fd)
            throw SystemError("connect", path, errno: Errno(rawValue: code))
        }
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8]) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            let n = try retryingEINTR("send", path) {
                bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            }
            done += n
        }
    }

    /// Reads one line (without the newline); nil at end of stream.
    public func readLine(limit: Int = 16 << 20) throws(SystemError) -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < limit {
            let n = try retryingEINTR("recv", path) { recv(fd, &byte, 1, 0) }
            if n == 0 { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }
}
