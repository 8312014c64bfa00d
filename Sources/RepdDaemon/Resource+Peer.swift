import Crypto
import NIOCore
import PeerProtocol
import RepdConfig
import RepdEngine
import RepdNet
import RepdSystem

/// The replication link: PeerLink does the sockets, the handshake and the keep-alive; what it
/// hears goes to the engine as events.
extension Resource: PeerLinkDelegate {
    func startPeerLink() async throws {
        guard let peer = config.peer else { return }
        let net = config.net
        let configuration = PeerLinkConfiguration(
            resource: config.name, localNode: node, peerNode: peer.names.first ?? "peer",
            listenHost: config.local.address.host, listenPort: config.local.address.port,
            peerHost: peer.address.host, peerPort: peer.address.port,
            sharedSecret: net.sharedSecret.map { Array($0.utf8) }, algorithm: net.cramHMACAlg,
            connectInterval: .seconds(Int64(max(1, net.connectIntervalSeconds))),
            pingInterval: .seconds(Int64(max(1, net.pingIntervalSeconds))),
            pingTimeout: .milliseconds(Int64(max(1, net.pingTimeoutDeciseconds)) * 100),
            sendBufferSize: net.sndbufSize, receiveBufferSize: net.rcvbufSize)
        let link = PeerLink(configuration: configuration, group: peerLoop, logger: logger, delegate: self,
                            mac: Resource.hmac, random: { ProcessSupport.randomUInt64() })
        self.link = link
        do {
            try await link.start()
        } catch {
            throw ResourceError("cannot listen for the peer on \(config.local.address): \(error)")
        }
        logger.info("replication: listening on \(config.local.address), connecting to \(configuration.peerNode) at \(peer.address) (protocol \(net.protocol.rawValue))")
    }

    static let hmac: @Sendable (String, [UInt8], [UInt8]) -> [UInt8] = { algorithm, key, message in
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
