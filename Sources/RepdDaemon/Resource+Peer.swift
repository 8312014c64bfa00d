import Crypto
import NIOCore
import RepdCore
import PeerProtocol
import RepdConfig
import RepdEngine
import RepdNet
import RepdSystem

/// The replication link: PeerLink does the sockets, the handshake and the keep-alive; what it
/// hears goes to the engine as events.
extension Resource: PeerLinkDelegate {
    /// The replication link's settings (also those the fencing path authenticates with).
    public static func linkConfiguration(_ config: ResolvedResource, node: String) -> PeerLinkConfiguration? {
        guard let peer = config.peer else { return nil }
        let net = config.net
        var configuration = PeerLinkConfiguration(
            resource: config.name, localNode: node, peerNode: peer.names.first ?? "peer",
            listenHost: config.local.address.host, listenPort: config.local.address.port,
            peerHost: peer.address.host, peerPort: peer.address.port,
            sharedSecret: net.sharedSecret.map { Array($0.utf8) }, algorithm: net.cramHMACAlg,
            connectInterval: .seconds(Int64(max(1, net.connectIntervalSeconds))),
            pingInterval: .seconds(Int64(max(1, net.pingIntervalSeconds))),
            pingTimeout: .milliseconds(Int64(max(1, net.pingTimeoutDeciseconds)) * 100),
            sendBufferSize: net.sndbufSize, receiveBufferSize: net.rcvbufSize)
        configuration.dataIntegrityAlgorithm = net.dataIntegrityAlg
        return configuration
    }

    /// `tls yes`: the link's TLS contexts, loaded from the net section's PEM files (an unreadable
    /// or mismatched file fails `up` and `adjust` with the file named).
    public static func linkTLS(_ config: ResolvedResource) throws -> TLSSetup.PeerContexts? {
        let net = config.net
        guard net.tls else { return nil }
        guard let certificate = net.tlsCertificate, let key = net.tlsPrivateKey, let ca = net.tlsCA else {
            throw ResourceError("tls yes needs tls-certificate, tls-privkey and tls-ca in the net section")
        }
        do {
            return try TLSSetup.peerContexts(certificate: certificate, privateKey: key, ca: ca)
        } catch {
            throw ResourceError("TLS on the replication link: \(error)")
        }
    }

    func startPeerLink(tls: TLSSetup.PeerContexts?) async throws {
        guard let peer = config.peer, var configuration = Self.linkConfiguration(config, node: node) else { return }
        configuration.tls = tls
        let net = config.net
        let link = PeerLink(configuration: configuration, group: peerLoop, logger: logger, delegate: self,
                            mac: Resource.hmac, random: { ProcessSupport.randomUInt64() },
                            digest: { algorithm, data in LocalDisk.digest(data, algorithm: algorithm) })
        self.link = link
        do {
            try await link.start()
        } catch {
            throw ResourceError("cannot listen for the peer on \(config.local.address): \(error)")
        }
        let tlsNote = tls.map { "; \($0.summary)" } ?? ""
        logger.info("replication: listening on \(config.local.address), connecting to \(configuration.peerNode) at \(peer.address) (protocol \(net.protocol.rawValue))\(tlsNote)")
        if let address = config.local.fenceAddress {
            let server = FenceServer(configuration: configuration, group: peerLoop, logger: logger, mac: Resource.hmac,
                                     random: { ProcessSupport.randomUInt64() }) { [weak self] action, _ in
                guard let self, action == FenceAction.outdate else { return (UInt8(FenceAnswer.refused.rawValue), "unknown request") }
                let answer = await self.command(.outdate(byPeer: true))
                // The engine's answer starts with the fence-peer exit code.
                let code = UInt8(answer.message.prefix { $0.isNumber }) ?? UInt8(FenceAnswer.refused.rawValue)
                return (code, String(answer.message.drop { $0.isNumber || $0 == " " }))
            }
            do {
                try await server.listen(host: address.host, port: address.port)
            } catch {
                throw ResourceError("cannot listen on the fence-address \(address): \(error)")
            }
            fenceServer = server
            logger.info("fencing path: listening on \(address)")
        }
    }

    public static let hmac: @Sendable (String, [UInt8], [UInt8]) -> [UInt8] = { algorithm, key, message in
        let symmetricKey = SymmetricKey(data: key)
        switch algorithm {
        case "sha1": return Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: symmetricKey))
        default: return Array(HMAC<SHA256>.authenticationCode(for: message, using: symmetricKey))
        }
    }

    public func peerLinkEstablished(_ connection: PeerConnection, hello: PeerHello) {
        state.withLockedValue { $0.connections[connection.id] = connection }
        feed(.peerConnected(connection.id, peerNode: hello.node, localResolves: link?.configuration.isLeader ?? true))
    }

    public func peerLinkRefused(reason: String) {
        feed(.peerRefused(reason: reason))
    }

    public func peerLinkLost(_ connection: PeerConnection, reason: String) {
        feed(.peerLost(connection.id, reason: reason))
        state.withLockedValue { _ = $0.connections.removeValue(forKey: connection.id) }
    }

    public func peerLinkReceived(_ message: PeerMessage, on connection: PeerConnection) {
        feed(.peerMessage(connection.id, message))
    }
}
