import NBDProtocol
import NIOCore
import PeerProtocol
import RepdEngine
import RepdNet

/// The NBD export: every request becomes an engine event; the engine's `complete` action answers it.
extension Resource: NBDBackend {
    public func exports() -> [NBDExportInfo] {
        // SEND_DF reaches only clients that negotiated structured replies (NBDNegotiation).
        let flags: NBD.TransmissionFlags = [
            .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendFastZero, .sendCache, .canMultiConn, .sendDF,
        ]
        let size = state.withLockedValue { $0.engine.exportSize }
        return [NBDExportInfo(name: config.name, description: "repd resource \(config.name) on \(node)", size: size, flags: flags)]
    }

    public func report(_ message: String, connection: String) {
        logger.warning("NBD \(connection): \(message)")
    }

    public func execute(_ request: NBDRequest, payload: ByteBuffer?, session: NBDSession, on eventLoop: any EventLoop) -> EventLoopFuture<NBDOutcome> {
        guard let command = request.command else {
            return eventLoop.makeFailedFuture(NBDFailure(.invalid, "unknown command"))
        }
        let promise = eventLoop.makePromise(of: NBDOutcome.self)
        let id = state.withLockedValue { s -> ClientRequestID in
            defer { s.nextRequest += 1 }
            return s.nextRequest
        }
        let event: Event
        let kind: WaitingRequest.Kind
        switch command {
        case .write, .trim, .writeZeroes:
            let range = request.offset..<(request.offset + UInt64(request.length))
            let writeKind: PeerWrite.Kind = command == .write ? .data : command == .trim ? .trim : .zeroes
            event = .clientWrite(id, ClientWrite(range: range, kind: writeKind, fua: request.flags.contains(.fua), noHole: request.flags.contains(.noHole),
                                                 fastZero: request.flags.contains(.fastZero), payload: payload))
            kind = .write
        case .flush:
            event = .clientFlush(id)
            kind = .flush
        case .read:
            event = .clientRead(id, offset: request.offset, length: request.length, kind: .read)
            kind = .read
        case .cache:
            event = .clientRead(id, offset: request.offset, length: request.length, kind: .cache)
            kind = .read
        case .blockStatus:
            event = .clientRead(id, offset: request.offset, length: request.length, kind: .blockStatus(requestOne: request.flags.contains(.requestOne)))
            kind = .other
        default:
            return eventLoop.makeFailedFuture(NBDFailure(.invalid, "unexpected \(command)"))
        }
        feed(event, registering: (id, promise, kind))
        return promise.futureResult
    }
}
