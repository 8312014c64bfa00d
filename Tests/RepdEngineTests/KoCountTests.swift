import PeerProtocol
import RepdCore
@testable import RepdEngine
import XCTest

/// `timeout` and `ko-count` for replicated writes the peer does not acknowledge.
final class KoCountTests: XCTestCase {
    func probes(_ h: EngineHarness) -> Int { h.actions.filter { if case .probePeer = $0 { true } else { false } }.count }
    /// ko-count expels the peer: StandAlone, as DRBD does.
    func drops(_ h: EngineHarness) -> [String] {
        h.actions.compactMap { if case .goStandAlone(let reason) = $0 { reason } else { nil } }
    }

    /// A write late by one timeout pings the peer; the link drops at ko-count timeouts.
    func testStrikesPingThenDropAtKoCount() {
        var h = EngineHarness { $0.ackTimeoutNanoseconds = 1_000_000_000; $0.koCount = 3 }
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 2)))
        for _ in 0..<11 { h.tick() }        // 1.1 s: strike 1
        XCTAssertEqual(probes(h), 1)
        XCTAssertEqual(drops(h), [])
        for _ in 0..<10 { h.tick() }        // 2.1 s: strike 2
        XCTAssertEqual(probes(h), 2)
        XCTAssertEqual(drops(h), [])
        for _ in 0..<10 { h.tick() }        // 3.1 s: ko-count reached
        XCTAssertEqual(drops(h).count, 1)
        XCTAssertTrue(drops(h).first?.contains("ko-count 3") == true, "\(drops(h))")
    }

    /// ko-count 1 is the old rule: dropped at the first timeout, without a ping first.
    func testKoCountOneDropsAtTheFirstTimeout() {
        var h = EngineHarness { $0.ackTimeoutNanoseconds = 1_000_000_000; $0.koCount = 1 }
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 2)))
        for _ in 0..<11 { h.tick() }
        XCTAssertEqual(drops(h).count, 1)
        XCTAssertEqual(probes(h), 0)
    }

    /// ko-count 0: never dropped for a late write alone; pinged every timeout.
    func testKoCountZeroOnlyPings() {
        var h = EngineHarness { $0.ackTimeoutNanoseconds = 1_000_000_000; $0.koCount = 0 }
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 2)))
        for _ in 0..<100 { h.tick() }
        XCTAssertEqual(drops(h), [])
        XCTAssertEqual(probes(h), 10)
    }

    /// The acknowledgement ends the strikes: a later late write starts from strike 1 again.
    func testAnAcknowledgementResetsTheStrikes() {
        var h = EngineHarness { $0.ackTimeoutNanoseconds = 1_000_000_000; $0.koCount = 2 }
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 2)))
        guard let (token, _) = h.localWrites.first, case .write(let w)? = h.sent.first else { return XCTFail("\(h.actions)") }
        h.feed(.writeDone(token, nil))
        for _ in 0..<15 { h.tick() }        // strike 1
        XCTAssertEqual(probes(h), 1)
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        h.tick()
        XCTAssertEqual(h.engine.session?.koStrikes, 0)
        h.clear()
        h.feed(.clientWrite(2, EngineHarness.clientWrite(block: 4)))
        for _ in 0..<15 { h.tick() }
        XCTAssertEqual(probes(h), 1, "strike 1 again, not 2")
        XCTAssertEqual(drops(h), [])
    }
}
