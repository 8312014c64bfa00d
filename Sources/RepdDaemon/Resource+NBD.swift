import NBDProtocol
import NIOCore
import PeerProtocol
import RepdEngine
import RepdConfig
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

extension Resource {
    /// `nbd-tls require|allow`: the NBD listener's TLS, from the on section's nbd-tls-* files or
    /// else the net section's tls-certificate and tls-privkey.
    static func nbdTLS(_ config: ResolvedResource) throws -> NBDServerTLS? {
        let local = config.local
        let policy: NBDNegotiation.TLSPolicy
        switch local.nbdTLS {
        case .off: return nil
        case .allow: policy = .allow
        case .require: policy = .require
        }
        guard let certificate = local.nbdTLSCertificate ?? config.net.tlsCertificate,
              let key = local.nbdTLSPrivateKey ?? config.net.tlsPrivateKey else {
            throw ResourceError("nbd-tls \(local.nbdTLS.rawValue) needs nbd-tls-certificate and nbd-tls-privkey (or tls-certificate and tls-privkey in net)")
        }
        do {
            let context = try TLSSetup.nbdServerContext(certificate: certificate, privateKey: key, clientCA: local.nbdTLSCA)
            return NBDServerTLS(policy: policy, context: context, clientCA: local.nbdTLSCA)
        } catch {
            throw ResourceError("TLS on NBD: \(error)")
        }
    }
}
