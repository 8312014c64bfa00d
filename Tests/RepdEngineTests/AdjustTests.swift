import PeerProtocol
import RepdCore
@testable import RepdEngine
import XCTest

/// `repd adjust`: settings taken while the engine runs.
final class AdjustTests: XCTestCase {
    func replies(_ h: EngineHarness) -> [(CommandID, Bool, String)] {
        h.actions.compactMap { if case .reply(let id, let ok, let message) = $0 { return (id, ok, message) } else { return nil } }
    }

    /// A write admitted under protocol C completes on the peer's write acknowledgement even after
    /// the switch to A; the next write completes once sent.
    func testProtocolChangeWithAWriteInFlight() {
        var h = EngineHarness(protocol: .C)
        h.connectedPrimary()
        h.feed(.clientWrite(10, EngineHarness.clientWrite(block: 3)))
        guard let (token, _) = h.localWrites.first, case .write(let first)? = h.sent.first else { return XCTFail("\(h.actions)") }
        h.feed(.writeDone(token, nil))

        var settings = h.engine.configuration
        settings.replication = .A
        h.feed(.adjust(50, settings))
        XCTAssertEqual(replies(h).last?.1, true)
        XCTAssertEqual(h.engine.configuration.replication, .A)
        XCTAssertNil(h.completed(10), "a write in flight completed by the switch alone")
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: first.sequence, status: 0)))
        XCTAssertTrue(h.isDone(10))

        h.clear()
        h.feed(.clientWrite(11, EngineHarness.clientWrite(block: 5)))
        guard let (token2, _) = h.localWrites.first, case .write(let second)? = h.sent.first else { return XCTFail("\(h.actions)") }
        h.feed(.writeDone(token2, nil))
        h.feed(.peerSent(EngineHarness.connection, sequence: second.sequence))
        XCTAssertTrue(h.isDone(11), "protocol A: not completed once sent")
    }

    func testTurningOffTwoPrimariesIsRefusedWhileBothArePrimary() {
        var h = EngineHarness { $0.allowTwoPrimaries = true }
        h.connectedPrimary()
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(role: .primary, generation: h.engine.metadata.superblock.generation))))
        XCTAssertEqual(h.engine.state.peerRole, .primary)
        var settings = h.engine.configuration
        settings.allowTwoPrimaries = false
        h.feed(.adjust(51, settings))
        guard let reply = replies(h).last else { return XCTFail("no reply") }
        XCTAssertFalse(reply.1)
        XCTAssertTrue(reply.2.contains("both nodes are Primary"), reply.2)
        XCTAssertTrue(h.engine.configuration.allowTwoPrimaries, "refused, yet changed")
    }

    func testARunningResyncTakesTheNewRate() {
        var h = EngineHarness { $0.resync.planAhead = 0; $0.resync.fixedRate = 1 << 20 }
        h.feed(.command(1, .newCurrentUUID(clearBitmap: false)))
        h.feed(.command(2, .primary(force: true)))
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "beta", localResolves: true))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(disk: .inconsistent, generation: GenerationIdentifiers(current: 0)))))
        guard h.engine.session?.resync != nil else { return XCTFail("no resync started: \(h.actions)") }
        var settings = h.engine.configuration
        settings.resync.fixedRate = 64 << 20
        h.feed(.adjust(52, settings))
        XCTAssertEqual(replies(h).last?.1, true)
        XCTAssertEqual(h.engine.session?.resync?.controller?.settings.fixedRate, 64 << 20)
    }

    /// What is fixed at `up` stays: the size and the activity log.
    func testSizeAndActivityLogStay() {
        var h = EngineHarness()
        var settings = h.engine.configuration
        settings.usableSize = 1
        settings.activityLogExtents = 4000
        settings.resource = "other"
        h.feed(.adjust(53, settings))
        XCTAssertEqual(replies(h).last?.1, true)
        XCTAssertEqual(h.engine.configuration.usableSize, EngineHarness.size)
        XCTAssertEqual(h.engine.configuration.activityLogExtents, 16)
        XCTAssertEqual(h.engine.configuration.resource, "r0")
    }
}
