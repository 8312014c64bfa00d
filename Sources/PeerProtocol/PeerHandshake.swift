/// The connection handshake, the same on both sides (there is no client or server role).
///
/// Both sides send `start()`'s hello at once, then feed every received message to `receive` until it
/// returns `established` or `fail`. With a shared secret each side also challenges the other and
/// answers the other's challenge; the connection is established when the peer's hello is valid and,
/// with authentication, this side has verified the peer and the peer has accepted this side. The
/// messages of the two directions may interleave in any order.
///
/// Pure: no I/O, no randomness, no clock. The nonce and the challenge come from the caller, the MAC
/// from the `mac` closure (the daemon passes swift-crypto's HMAC).
public struct PeerHandshake: Sendable {
    public struct Configuration: Sendable {
        public var resource: String
        public var localNode: String
        public var peerNode: String
        /// The `shared-secret`; nil turns authentication off.
        public var sharedSecret: [UInt8]?
        /// The `cram-hmac-alg`: "sha1" or "sha256" (when a secret is set and this is nil, "sha256").
        public var algorithm: String?
        /// A random number for this connection, sent in the hello.
        public var nonce: UInt64
        /// The challenge to send: 32 random bytes, new for every connection.
        public var challenge: [UInt8]
        /// The protocol versions this node speaks.
        public var versionMin: UInt16
        public var versionMax: UInt16
        /// Features this node supports (hello's `features`).
        public var features: UInt32

        public init(
            resource: String, localNode: String, peerNode: String, sharedSecret: [UInt8]? = nil, algorithm: String? = nil,
            nonce: UInt64, challenge: [UInt8],
            versionMin: UInt16 = PeerWire.currentVersion, versionMax: UInt16 = PeerWire.currentVersion, features: UInt32 = 0
        ) {
            self.resource = resource
            self.localNode = localNode
            self.peerNode = peerNode
            self.sharedSecret = sharedSecret
            self.algorithm = algorithm
            self.nonce = nonce
            self.challenge = challenge
            self.versionMin = versionMin
            self.versionMax = versionMax
            self.features = features
        }

        var authenticates: Bool { sharedSecret != nil }
        var effectiveAlgorithm: String { algorithm ?? "sha256" }
    }

    public enum Action: Sendable, Equatable {
        /// Send these messages (possibly none) and keep feeding the handshake.
        case send([PeerMessage])
        /// The handshake failed: send `.error(reason)` to the peer if `notifyPeer`, log, close.
        case fail(reason: String, notifyPeer: Bool)
        /// Send these final messages (possibly none); the connection now carries replication.
        /// The hello is the peer's.
        case established(PeerHello, [PeerMessage])
    }

    private enum Phase: Sendable {
        case awaitingHello
        case authenticating
        case established
        case failed
    }

    public static let authenticationFailed = "authentication failed: wrong shared-secret on one of the nodes"

    private let configuration: Configuration
    private let mac: @Sendable (String, [UInt8], [UInt8]) -> [UInt8]
    private var phase: Phase = .awaitingHello
    private var answeredChallenge = false
    private var verifiedPeer = false
    private var acceptedByPeer = false

    /// The peer's hello, once received and valid.
    public private(set) var peerHello: PeerHello?
    /// The highest version both sides speak, once the peer's hello is valid.
    public private(set) var agreedVersion: UInt16?
    /// The features both hellos announce, once the peer's hello is valid.
    public var agreedFeatures: UInt32? { peerHello.map { $0.features & configuration.features } }

    /// - Parameter mac: `(algorithm, key, message) -> MAC`.
    public init(_ configuration: Configuration, mac: @escaping @Sendable (String, [UInt8], [UInt8]) -> [UInt8]) {
        self.configuration = configuration
        self.mac = mac
    }

    public var isEstablished: Bool { phase == .established }

    /// This node's hello.
    public var hello: PeerHello {
        PeerHello(
            versionMin: configuration.versionMin, versionMax: configuration.versionMax, features: configuration.features,
            resource: configuration.resource, node: configuration.localNode, peer: configuration.peerNode,
            nonce: configuration.nonce, authRequired: configuration.authenticates)
    }

    /// What to send as soon as the connection is up: `[hello]`.
    public func start() -> [PeerMessage] {
        [.hello(hello)]
    }

    public mutating func receive(_ message: PeerMessage) -> Action {
        switch phase {
        case .failed:
            return .fail(reason: "handshake already failed", notifyPeer: false)
        case .established:
            return .fail(reason: "unexpected \(message.type) after the handshake completed", notifyPeer: false)
        case .awaitingHello, .authenticating:
            break
        }
        switch message {
        case .error(let reason):
            return fail("peer refused: \(reason)", notifyPeer: false)
        case .hello(let peer):
            guard phase == .awaitingHello else { return fail("unexpected second hello during handshake") }
            return receiveHello(peer)
        case .authChallenge(let algorithm, let challenge) where phase == .authenticating && !answeredChallenge:
            guard algorithm.lowercased() == configuration.effectiveAlgorithm.lowercased() else {
                return fail("peer uses cram-hmac-alg '\(algorithm)', this node uses '\(configuration.effectiveAlgorithm)'")
            }
            answeredChallenge = true
            // The responder's own name is part of what it signs, so a challenge reflected back to its
            // sender (on this or another connection) does not yield a response the sender accepts.
            let response = mac(configuration.effectiveAlgorithm, configuration.sharedSecret!, challenge + Array(configuration.localNode.utf8))
            return .send([.authResponse(mac: response)])
        case .authResponse(let response) where phase == .authenticating && !verifiedPeer:
            let expected = mac(
                configuration.effectiveAlgorithm, configuration.sharedSecret!,
                configuration.challenge + Array(configuration.peerNode.utf8))
            guard Self.constantTimeEqual(response, expected) else {
                return fail(Self.authenticationFailed)
            }
            verifiedPeer = true
            return progress(sending: [.authResult(accepted: true, reason: "")])
        case .authResult(false, let reason):
            return fail(reason.isEmpty ? "peer rejected this node's authentication" : reason, notifyPeer: false)
        case .authResult(true, _) where phase == .authenticating && answeredChallenge && !acceptedByPeer:
            acceptedByPeer = true
            return progress(sending: [])
        default:
            return fail("unexpected \(message.type) during handshake")
        }
    }

    private mutating func receiveHello(_ peer: PeerHello) -> Action {
        let local = configuration
        guard peer.resource == local.resource else {
            return fail("peer is resource '\(peer.resource)', we are '\(local.resource)'")
        }
        guard peer.node == local.peerNode else {
            return fail("peer is node '\(peer.node)', but this node expects '\(local.peerNode)'")
        }
        guard peer.peer == local.localNode else {
            return fail("peer expects to connect to node '\(peer.peer)', but this node is '\(local.localNode)'")
        }
        let low = max(peer.versionMin, local.versionMin)
        let high = min(peer.versionMax, local.versionMax)
        guard low <= high else {
            return fail(
                "incompatible protocol versions: peer speaks \(peer.versionMin)..\(peer.versionMax), "
                    + "we speak \(local.versionMin)..\(local.versionMax)")
        }
        if peer.authRequired && !local.authenticates {
            return fail("peer requires authentication (cram-hmac-alg/shared-secret) but this node has none configured")
        }
        if !peer.authRequired && local.authenticates {
            return fail("this node requires authentication (cram-hmac-alg/shared-secret) but the peer has none configured")
        }
        peerHello = peer
        agreedVersion = high
        guard local.authenticates else {
            phase = .established
            return .established(peer, [])
        }
        phase = .authenticating
        return .send([.authChallenge(algorithm: local.effectiveAlgorithm, challenge: local.challenge)])
    }

    private mutating func progress(sending messages: [PeerMessage]) -> Action {
        guard verifiedPeer && acceptedByPeer, let peerHello else { return .send(messages) }
        phase = .established
        return .established(peerHello, messages)
    }

    private mutating func fail(_ reason: String, notifyPeer: Bool = true) -> Action {
        phase = .failed
        return .fail(reason: reason, notifyPeer: notifyPeer)
    }

    /// Compares without an early exit: the time depends only on the expected MAC's length.
    static func constantTimeEqual(_ received: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = received.count == expected.count ? 0 : 1
        for index in expected.indices {
            let byte = index < received.count ? received[index] : 0
            difference |= byte ^ expected[index]
        }
        return difference == 0
    }
}
