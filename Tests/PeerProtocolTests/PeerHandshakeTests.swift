import PeerProtocol
import XCTest

/// A stand-in for HMAC: a keyed FNV-1a stream, as long as the real digest. Enough to tell keys,
/// algorithms and messages apart, which is all the state machine relies on.
@Sendable func fakeMAC(_ algorithm: String, _ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
    let size = algorithm == "sha1" ? 20 : 32
    var state: UInt64 = 0xCBF2_9CE4_8422_2325
    func mix(_ byte: UInt8) { state = (state ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    for byte in Array(algorithm.utf8) + [0] + key + [0xFF] + message { mix(byte) }
    var out: [UInt8] = []
    for index in 0..<size {
        mix(UInt8(index))
        out.append(UInt8(truncatingIfNeeded: state >> 40))
    }
    return out
}

final class PeerHandshakeTests: XCTestCase {
    typealias Config = PeerHandshake.Configuration
    static let authFailed = "authentication failed: wrong shared-secret on one of the nodes"

    func config(
        _ local: String, _ peer: String, resource: String = "r0", secret: String? = nil, algorithm: String? = "sha256",
        versions: ClosedRange<UInt16> = 1...1
    ) -> Config {
        Config(
            resource: resource, localNode: local, peerNode: peer, sharedSecret: secret.map { Array($0.utf8) },
            algorithm: secret == nil ? nil : algorithm, nonce: local == "alpha" ? 0xA1 : 0xB2,
            challenge: Array(repeating: local == "alpha" ? 0xAA : 0xBB, count: 31) + [UInt8(local.utf8.count)],
            versionMin: versions.lowerBound, versionMax: versions.upperBound)
    }

    enum Outcome: Hashable, CustomStringConvertible {
        case pending
        case established(peer: String, version: UInt16?)
        case failed(String, notifyPeer: Bool)

        var description: String {
            switch self {
            case .pending: "pending"
            case .established(let peer, let version): "established with \(peer) v\(version.map(String.init) ?? "?")"
            case .failed(let reason, let notify): "failed(\(reason), notify: \(notify))"
            }
        }
    }

    struct Result: Hashable {
        var a: Outcome
        var b: Outcome
        /// Messages that reached a side after it was established (they belong to replication).
        var afterEstablished: Int
    }

    struct Side {
        var handshake: PeerHandshake
        var outcome: Outcome = .pending
        /// Messages this side sent that the other has not received yet (TCP keeps their order).
        var outbox: [PeerMessage]
        var closed = false
    }

    /// Runs both handshakes wired together, delivering the two directions' messages in every possible
    /// interleaving. A side that fails sends `.error` if asked to, then closes; what it sent before
    /// still arrives, what is sent to it afterwards is lost.
    func everyInterleaving(_ configA: Config, _ configB: Config) -> (results: Set<Result>, runs: Int) {
        let a = PeerHandshake(configA, mac: fakeMAC)
        let b = PeerHandshake(configB, mac: fakeMAC)
        var results = Set<Result>()
        var runs = 0

        func deliver(_ message: PeerMessage, to side: inout Side, extra: inout Int) {
            if side.closed { return }
            if case .established = side.outcome { extra += 1; return }
            switch side.handshake.receive(message) {
            case .send(let messages):
                side.outbox += messages
            case .established(let hello, let messages):
                side.outbox += messages
                side.outcome = .established(peer: hello.node, version: side.handshake.agreedVersion)
            case .fail(let reason, let notify):
                side.outcome = .failed(reason, notifyPeer: notify)
                if notify { side.outbox.append(.error(reason: reason)) }
                side.closed = true
            }
        }

        func explore(_ a: Side, _ b: Side, _ extra: Int) {
            var moved = false
            if !a.outbox.isEmpty {
                moved = true
                var (a, b, extra) = (a, b, extra)
                let message = a.outbox.removeFirst()
                deliver(message, to: &b, extra: &extra)
                explore(a, b, extra)
            }
            if !b.outbox.isEmpty {
                moved = true
                var (a, b, extra) = (a, b, extra)
                let message = b.outbox.removeFirst()
                deliver(message, to: &a, extra: &extra)
                explore(a, b, extra)
            }
            if !moved {
                runs += 1
                results.insert(Result(a: a.outcome, b: b.outcome, afterEstablished: extra))
            }
        }

        explore(Side(handshake: a, outbox: a.start()), Side(handshake: b, outbox: b.start()), 0)
        return (results, runs)
    }

    func assertEveryInterleaving(
        _ configA: Config, _ configB: Config, _ a: Outcome, _ b: Outcome, minimumRuns: Int = 2, line: UInt = #line
    ) {
        let (results, runs) = everyInterleaving(configA, configB)
        XCTAssertEqual(results, [Result(a: a, b: b, afterEstablished: 0)], line: line)
        XCTAssertGreaterThanOrEqual(runs, minimumRuns, line: line)
    }

    // MARK: success

    func testWithoutSecretEveryInterleavingEstablishes() {
        assertEveryInterleaving(
            config("alpha", "beta"), config("beta", "alpha"),
            .established(peer: "beta", version: 1), .established(peer: "alpha", version: 1))
    }

    func testWithSecretEveryInterleavingEstablishes() {
        for algorithm in ["sha1", "sha256"] {
            let (results, runs) = everyInterleaving(
                config("alpha", "beta", secret: "s3cret", algorithm: algorithm),
                config("beta", "alpha", secret: "s3cret", algorithm: algorithm))
            XCTAssertEqual(results, [Result(
                a: .established(peer: "beta", version: 1), b: .established(peer: "alpha", version: 1), afterEstablished: 0)])
            // Four messages each way (hello, challenge, response, result); each is sent only once what
            // prompts it has arrived, which leaves 16 possible delivery orders.
            XCTAssertEqual(runs, 16, algorithm)
        }
    }

    func testOverlappingVersionsAgreeOnTheHighestCommon() {
        assertEveryInterleaving(
            config("alpha", "beta", versions: 1...2), config("beta", "alpha", versions: 2...5),
            .established(peer: "beta", version: 2), .established(peer: "alpha", version: 2))
    }

    func testFeaturesBothAnnounce() {
        var config = config("alpha", "beta")
        config.features = 0b1011
        var handshake = PeerHandshake(config, mac: fakeMAC)
        XCTAssertEqual(handshake.start(), [.hello(PeerHello(features: 0b1011, resource: "r0", node: "alpha", peer: "beta", nonce: 0xA1, authRequired: false))])
        XCTAssertNil(handshake.agreedFeatures)
        let hello = PeerHello(features: 0b0110, resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: false)
        XCTAssertEqual(handshake.receive(.hello(hello)), .established(hello, []))
        XCTAssertEqual(handshake.agreedFeatures, 0b0010)
        XCTAssertEqual(handshake.agreedVersion, 1)
    }

    func testStepByStepWithAuthentication() {
        var a = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        var b = PeerHandshake(config("beta", "alpha", secret: "k"), mac: fakeMAC)
        let helloA = a.start()
        let helloB = b.start()
        XCTAssertEqual(helloA, [.hello(PeerHello(resource: "r0", node: "alpha", peer: "beta", nonce: 0xA1, authRequired: true))])
        XCTAssertEqual(a.hello.authRequired, true)

        guard case .send(let challengeA) = a.receive(helloB[0]) else { return XCTFail() }
        XCTAssertEqual(challengeA, [.authChallenge(algorithm: "sha256", challenge: config("alpha", "beta").challenge)])
        XCTAssertEqual(a.peerHello?.node, "beta")
        XCTAssertEqual(a.agreedVersion, 1)
        guard case .send(let challengeB) = b.receive(helloA[0]) else { return XCTFail() }

        // b answers a's challenge, binding its own name.
        guard case .send(let responseB) = b.receive(challengeA[0]) else { return XCTFail() }
        let expected = fakeMAC("sha256", Array("k".utf8), config("alpha", "beta").challenge + Array("beta".utf8))
        XCTAssertEqual(responseB, [.authResponse(mac: expected)])

        // a verifies b; it still waits for b to accept it.
        XCTAssertEqual(a.receive(responseB[0]), .send([.authResult(accepted: true, reason: "")]))
        XCTAssertFalse(a.isEstablished)
        guard case .send(let responseA) = a.receive(challengeB[0]) else { return XCTFail() }
        XCTAssertEqual(a.receive(.authResult(accepted: true, reason: "")), .established(helloB[0].helloValue!, []))
        XCTAssertTrue(a.isEstablished)

        // b is accepted before it verifies a: the verification is its last step and carries the final result.
        XCTAssertEqual(b.receive(.authResult(accepted: true, reason: "")), .send([]))
        XCTAssertEqual(
            b.receive(responseA[0]), .established(helloA[0].helloValue!, [.authResult(accepted: true, reason: "")]))
    }

    // MARK: refusals, both sides, every interleaving

    func testWrongSecret() {
        assertEveryInterleaving(
            config("alpha", "beta", secret: "one"), config("beta", "alpha", secret: "two"),
            .failed(Self.authFailed, notifyPeer: true), .failed(Self.authFailed, notifyPeer: true))
    }

    func testWrongResource() {
        assertEveryInterleaving(
            config("alpha", "beta", resource: "r0"), config("beta", "alpha", resource: "r1"),
            .failed("peer is resource 'r1', we are 'r0'", notifyPeer: true),
            .failed("peer is resource 'r0', we are 'r1'", notifyPeer: true))
    }

    func testWrongNodeName() {
        // alpha expects "gamma" at the other end, but beta answers.
        assertEveryInterleaving(
            config("alpha", "gamma"), config("beta", "alpha"),
            .failed("peer is node 'beta', but this node expects 'gamma'", notifyPeer: true),
            .failed("peer expects to connect to node 'gamma', but this node is 'beta'", notifyPeer: true))
    }

    func testOneSideWithoutSecret() {
        assertEveryInterleaving(
            config("alpha", "beta", secret: "s"), config("beta", "alpha"),
            .failed("this node requires authentication (cram-hmac-alg/shared-secret) but the peer has none configured", notifyPeer: true),
            .failed("peer requires authentication (cram-hmac-alg/shared-secret) but this node has none configured", notifyPeer: true))
    }

    func testAlgorithmMismatch() {
        assertEveryInterleaving(
            config("alpha", "beta", secret: "s", algorithm: "sha1"), config("beta", "alpha", secret: "s", algorithm: "sha256"),
            .failed("peer uses cram-hmac-alg 'sha256', this node uses 'sha1'", notifyPeer: true),
            .failed("peer uses cram-hmac-alg 'sha1', this node uses 'sha256'", notifyPeer: true))
    }

    func testVersionMismatch() {
        assertEveryInterleaving(
            config("alpha", "beta"), config("beta", "alpha", versions: 2...3),
            .failed("incompatible protocol versions: peer speaks 2..3, we speak 1..1", notifyPeer: true),
            .failed("incompatible protocol versions: peer speaks 1..1, we speak 2..3", notifyPeer: true))
    }

    // MARK: an attacker without the secret

    /// Mallory claims to be beta and sends alpha's own challenge back; alpha answers it, and Mallory
    /// returns that answer as its own response. Because the responder's name is in the MAC, alpha
    /// expects a MAC over (challenge ++ "beta") and gets one over (challenge ++ "alpha").
    func testReflectedChallengeOnTheSameConnection() {
        var alpha = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        let fakeHello = PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: true)
        guard case .send(let sent) = alpha.receive(.hello(fakeHello)),
              case .authChallenge(let algorithm, let challenge) = sent.first
        else { return XCTFail() }
        guard case .send(let answer) = alpha.receive(.authChallenge(algorithm: algorithm, challenge: challenge)),
              case .authResponse(let mac) = answer.first
        else { return XCTFail() }
        XCTAssertEqual(alpha.receive(.authResponse(mac: mac)), .fail(reason: Self.authFailed, notifyPeer: true))
        XCTAssertFalse(alpha.isEstablished)
    }

    /// The same across two connections to alpha, each with its own challenge.
    func testReflectedChallengeAcrossConnections() {
        var first = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        var secondConfig = config("alpha", "beta", secret: "k")
        secondConfig.challenge = Array(repeating: 0x5C, count: 32)
        var second = PeerHandshake(secondConfig, mac: fakeMAC)
        let fakeHello = PeerMessage.hello(PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: true))
        guard case .send(let challenges) = first.receive(fakeHello), case .send = second.receive(fakeHello) else { return XCTFail() }
        guard case .send(let answer) = second.receive(challenges[0]), case .authResponse(let mac) = answer.first else { return XCTFail() }
        XCTAssertEqual(first.receive(.authResponse(mac: mac)), .fail(reason: Self.authFailed, notifyPeer: true))
    }

    func testResponseOfWrongLengthFails() {
        var alpha = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        _ = alpha.receive(.hello(PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: true)))
        let good = fakeMAC("sha256", Array("k".utf8), config("alpha", "beta").challenge + Array("beta".utf8))
        for bad in [[], Array(good.prefix(31)), good + [0], [good[0] ^ 1] + good.dropFirst()] {
            var copy = alpha
            XCTAssertEqual(copy.receive(.authResponse(mac: bad)), .fail(reason: Self.authFailed, notifyPeer: true))
        }
        XCTAssertEqual(alpha.receive(.authResponse(mac: good)), .send([.authResult(accepted: true, reason: "")]))
    }

    // MARK: out-of-order and refused

    func testMessageBeforeHello() {
        let cases: [(PeerMessage, String)] = [
            (.ping, "unexpected ping during handshake"),
            (.chosen, "unexpected chosen during handshake"),
            (.authChallenge(algorithm: "sha256", challenge: Array(repeating: 1, count: 32)), "unexpected authChallenge during handshake"),
            (.authResponse(mac: [1]), "unexpected authResponse during handshake"),
            (.authResult(accepted: true, reason: ""), "unexpected authResult during handshake"),
            (.state(Samples.state), "unexpected state during handshake"),
            (.write(PeerWrite(sequence: 1, offset: 0, length: 4096, kind: .trim)), "unexpected write during handshake"),
        ]
        for (message, reason) in cases {
            for secret in [nil, "k"] {
                var handshake = PeerHandshake(config("alpha", "beta", secret: secret), mac: fakeMAC)
                XCTAssertEqual(handshake.receive(message), .fail(reason: reason, notifyPeer: true))
                XCTAssertEqual(handshake.receive(.hello(PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: secret != nil))),
                               .fail(reason: "handshake already failed", notifyPeer: false))
            }
        }
    }

    func testDuplicateHello() {
        var handshake = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        let hello = PeerMessage.hello(PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: true))
        guard case .send = handshake.receive(hello) else { return XCTFail() }
        XCTAssertEqual(handshake.receive(hello), .fail(reason: "unexpected second hello during handshake", notifyPeer: true))
    }

    func testUnexpectedMessagesWhileAuthenticating() {
        let hello = PeerMessage.hello(PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: true))
        let challenge = PeerMessage.authChallenge(algorithm: "sha256", challenge: Array(repeating: 7, count: 32))
        var base = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        _ = base.receive(hello)

        var early = base   // accepted before it answered the peer's challenge
        XCTAssertEqual(early.receive(.authResult(accepted: true, reason: "")), .fail(reason: "unexpected authResult during handshake", notifyPeer: true))

        var twice = base
        guard case .send = twice.receive(challenge) else { return XCTFail() }
        XCTAssertEqual(twice.receive(challenge), .fail(reason: "unexpected authChallenge during handshake", notifyPeer: true))

        var data = base
        XCTAssertEqual(data.receive(.syncDone(blocks: 1)), .fail(reason: "unexpected syncDone during handshake", notifyPeer: true))

        var acceptedTwice = base
        _ = acceptedTwice.receive(challenge)
        XCTAssertEqual(acceptedTwice.receive(.authResult(accepted: true, reason: "")), .send([]))
        XCTAssertEqual(acceptedTwice.receive(.authResult(accepted: true, reason: "")), .fail(reason: "unexpected authResult during handshake", notifyPeer: true))
    }

    func testErrorFromPeer() {
        let hello = PeerMessage.hello(PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: true))
        var before = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        XCTAssertEqual(before.receive(.error(reason: "going down")), .fail(reason: "peer refused: going down", notifyPeer: false))
        var during = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        _ = during.receive(hello)
        XCTAssertEqual(
            during.receive(.error(reason: Self.authFailed)),
            .fail(reason: "peer refused: authentication failed: wrong shared-secret on one of the nodes", notifyPeer: false))
    }

    func testPeerRejectsUs() {
        var handshake = PeerHandshake(config("alpha", "beta", secret: "k"), mac: fakeMAC)
        _ = handshake.receive(.hello(PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: true)))
        var withReason = handshake
        XCTAssertEqual(withReason.receive(.authResult(accepted: false, reason: Self.authFailed)), .fail(reason: Self.authFailed, notifyPeer: false))
        XCTAssertEqual(handshake.receive(.authResult(accepted: false, reason: "")), .fail(reason: "peer rejected this node's authentication", notifyPeer: false))
    }

    func testAfterEstablished() {
        var handshake = PeerHandshake(config("alpha", "beta"), mac: fakeMAC)
        let hello = PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: false)
        XCTAssertEqual(handshake.receive(.hello(hello)), .established(hello, []))
        XCTAssertEqual(handshake.receive(.chosen), .fail(reason: "unexpected chosen after the handshake completed", notifyPeer: false))
        XCTAssertTrue(handshake.isEstablished)
    }

    func testDefaultAlgorithmWhenOnlyASecretIsGiven() {
        let handshake = PeerHandshake(
            Config(resource: "r0", localNode: "alpha", peerNode: "beta", sharedSecret: [1], nonce: 0, challenge: Array(repeating: 0, count: 32)),
            mac: fakeMAC)
        var copy = handshake
        XCTAssertEqual(
            copy.receive(.hello(PeerHello(resource: "r0", node: "beta", peer: "alpha", nonce: 1, authRequired: true))),
            .send([.authChallenge(algorithm: "sha256", challenge: Array(repeating: 0, count: 32))]))
    }
}

extension PeerMessage {
    var helloValue: PeerHello? {
        if case .hello(let hello) = self { return hello }
        return nil
    }
}
