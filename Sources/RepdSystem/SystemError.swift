#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// A failed system call, with what was attempted and on what.
///
/// Nothing above RepdSystem sees a raw errno: every call returns a value or throws this.
public struct SystemError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The operation, e.g. "open", "pwrite".
    public var operation: String
    /// What it was applied to (a path, a socket, an offset), for the message.
    public var subject: String
    public var errno: Errno

    public init(_ operation: String, _ subject: String = "", errno: Errno) {
        self.operation = operation
        self.subject = subject
        self.errno = errno
    }

    public var errnoValue: Int32 { errno.rawValue }

    public var description: String {
        let what = subject.isEmpty ? operation : "\(operation) \(subject)"
        return "\(what): \(String(cString: strerror(errno.rawValue)))"
    }
}

/// Runs a system call, retrying on EINTR, and turns -1 into a typed error.
@inline(__always)
func retryingEINTR<T: FixedWidthInteger>(
    _ operation: String, _ subject: @autoclosure () -> String = "", _ body: () -> T
) throws(SystemError) -> T {
    while true {
        let result = body()
        if result == -1 {
            let code = Glibc.errno
            if code == EINTR { continue }
            throw SystemError(operation, subject(), errno: Errno(rawValue: code))
        }
        return result
    }
}
