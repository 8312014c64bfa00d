import NBDProtocol
import NIOCore

/// What a successful request produced.
public enum NBDOutcome: Sendable {
    case done
    case data(ByteBuffer)
    case extents([(length: UInt32, flags: UInt32)])
}

/// A failed request: the error the client gets and a message for the log and for structured replies.
public struct NBDFailure: Error, Sendable, CustomStringConvertible {
    public var error: NBDError
    public var message: String
    public init(_ error: NBDError, _ message: String) {
        self.error = error
        self.message = message
    }
    public var description: String { "\(error): \(message)" }
}

/// The device behind the NBD server. The server validates framing and ranges; the backend
/// decides what each command does (role checks, local I/O, replication).
public protocol NBDBackend: Sendable {
    /// The exports offered to a new connection.
    func exports() -> [NBDExportInfo]
    /// Executes a validated request. The future fails with `NBDFailure` (anything else becomes EIO).
    func execute(_ request: NBDRequest, payload: ByteBuffer?, session: NBDSession, on eventLoop: any EventLoop) -> EventLoopFuture<NBDOutcome>
    /// Called for protocol events worth an operator's attention (hostile or broken clients).
    func report(_ message: String, connection: String)
}
