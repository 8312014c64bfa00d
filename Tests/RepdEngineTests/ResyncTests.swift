import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine
import XCTest

/// The peer session and both ends of a resync, event in, actions out.
final class ResyncTests: XCTestCase {
    /// After `primary --force` on a fresh pair, the decision makes this node SyncSource of a full sync.
    func testConnectingDecidesAndStartsAFullSyncAsSource() {
        var h = EngineHarness { $0.resync = ResyncController.Settings(fixedRate: 400 << 20, planAhead: 0, fillTarget: 0, delayTarget: 10, maxRate: 400 << 20, minRate: 0) }
        h.feed(.command(1, .primary(force: true)))
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "beta", localResolves: true))
        XCTAssertTrue(h.sent.contains { if case .state = $0 { return true } else { return false } }, "no state report on connect")
        h.clear()
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(disk: .inconsistent, generation: GenerationIdentifiers(current: GenerationIdentifiers.justCreated)))))
        XCTAssertEqual(h.engine.session?.decision?.strategy, .becomeSyncSource(full: true))
        XCTAssertEqual(h.engine.state.replication, .syncSource)
        XCTAssertTrue(h.sent.contains { if case .syncStart(_, let total, true) = $0 { return total == EngineHarness.size / 4096 } else { return false } })
        h.tick()
        XCTAssertFalse(h.localReads.isEmpty, "the source reads nothing to send")
    }

    /// The fill-target controller (DRBD's default mode): the window is refilled by each
    /// acknowledgement, not only at ticks, so a fast link moves many windows per tick, up to the
    /// tick's tenth of c-max-rate, and never has more than the window in flight.
    func testTheFillTargetWindowIsRefilledByAcknowledgementsWithinATick() {
        let fill = 64 << 10, maxRate = 4 << 20
        var h = EngineHarness {
            $0.resync = ResyncController.Settings(fixedRate: 0, planAhead: 20, fillTarget: fill, delayTarget: 10, maxRate: maxRate, minRate: 250 << 10)
        }
        h.feed(.command(1, .primary(force: true)))
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "beta", localResolves: true))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(disk: .inconsistent, generation: GenerationIdentifiers(current: GenerationIdentifiers.justCreated)))))
        h.tick()
        var moved = 0, rounds = 0
        while !h.localReads.isEmpty, rounds < 1000 {
            rounds += 1
            let reads = h.localReads
            h.clear()
            XCTAssertLessThanOrEqual(h.engine.session?.resync?.inFlightBytes ?? 0, fill, "round \(rounds)")
            for (token, range, _) in reads {
                h.feed(.readDone(token, .success(ReadOutcome(data: ByteBuffer(repeating: 1, count: range.count)))))
            }
            let data = h.sent.compactMap { message -> (UInt64, Int)? in
                if case .syncData(let offset, let payload) = message { return (offset, payload.readableBytes) }
                return nil
            }
            for (offset, length) in data {
                moved += length
                h.feed(.peerMessage(EngineHarness.connection, .syncAck(offset: offset, length: UInt32(length), status: 0)))
            }
        }
        XCTAssertEqual(Double(moved), Double(maxRate / 10), accuracy: 4096,
                       "one tick moves its tenth of c-max-rate, \((maxRate / 10) / fill) windows, and no more (to the block)")
        h.tick()
        XCTAssertFalse(h.localReads.isEmpty, "the next tick goes on")
    }

    /// The source clears a block only once the target has it durably: after its syncAck and a
    /// barrier's flushAck, not before.
    func testSourceClearsBitsOnlyAfterTheTargetConfirmsDurability() {
        var h = EngineHarness { $0.resync = ResyncController.Settings(fixedRate: 400 << 20, planAhead: 0, fillTarget: 0, delayTarget: 10, maxRate: 400 << 20, minRate: 0) }
        h.connectedPrimary()
        // The peer missed writes: mark two blocks, then ask for a resync of the marked blocks.
        h.feed(.peerLost(EngineHarness.connection, reason: "test"))
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 100, blocks: 2)))
        for (token, _) in h.localWrites { h.feed(.writeDone(token, nil)) }
        XCTAssertEqual(h.engine.metadata.bitmap.outOfSyncCount, 2)
        let generation = h.engine.metadata.superblock.generation
        var peerGeneration = generation
        peerGeneration.current = generation.bitmap
        peerGeneration.bitmap = 0
        h.feed(.peerConnected(EngineHarness.connection + 1, peerNode: "beta", localResolves: true))
        h.feed(.peerMessage(EngineHarness.connection + 1, .state(h.peerReport(generation: peerGeneration))))
        XCTAssertEqual(h.engine.session?.decision?.strategy, .becomeSyncSource(full: false))
        h.feed(.peerMessage(EngineHarness.connection + 1, .bitmapDone(pages: 0)))
        h.tick()
        guard let (token, range, _) = h.localReads.first else { return XCTFail("no resync read: \(h.actions)") }
        XCTAssertEqual(range, 100 * 4096..<102 * 4096)
        h.clear()
        h.feed(.readDone(token, .success(ReadOutcome(data: ByteBuffer(repeating: 1, count: range.count)))))
        guard case .syncData(let offset, let payload)? = h.sent.first else { return XCTFail("no syncData: \(h.actions)") }
        XCTAssertEqual(offset, range.lowerBound)
        XCTAssertEqual(payload.readableBytes, range.count)
        h.feed(.peerMessage(EngineHarness.connection + 1, .syncAck(offset: offset, length: UInt32(range.count), status: 0)))
        XCTAssertEqual(h.engine.metadata.bitmap.outOfSyncCount, 2, "cleared on the acknowledgement alone")
        // Only durability is missing now: the barrier goes at once (or at the next tick).
        h.tick()
        guard case .flush(let barrier)? = h.sent.first(where: { if case .flush = $0 { return true } else { return false } }) else {
            return XCTFail("no barrier for the acknowledged resync data: \(h.actions)")
        }
        h.clear()
        h.feed(.peerMessage(EngineHarness.connection + 1, .flushAck(sequence: barrier, status: 0)))
        XCTAssertEqual(h.engine.metadata.bitmap.outOfSyncCount, 0)
        XCTAssertTrue(h.sent.contains { if case .syncDone(2) = $0 { return true } else { return false } }, "\(h.actions)")
        XCTAssertEqual(h.engine.state.replication, .established)
    }

    /// A lost link before the confirmation leaves the blocks marked for the next resync.
    func testLostLinkKeepsUnconfirmedResyncBlocks() {
        var h = EngineHarness { $0.resync = ResyncController.Settings(fixedRate: 400 << 20, planAhead: 0, fillTarget: 0, delayTarget: 10, maxRate: 400 << 20, minRate: 0) }
        h.feed(.command(1, .primary(force: true)))
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "beta", localResolves: true))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(disk: .inconsistent, generation: GenerationIdentifiers(current: GenerationIdentifiers.justCreated)))))
        h.tick()
        let reads = h.localReads
        h.clear()
        for (token, range, _) in reads { h.feed(.readDone(token, .success(ReadOutcome(data: ByteBuffer(repeating: 0, count: range.count))))) }
        for case .syncData(let offset, let payload) in h.sent {
            h.feed(.peerMessage(EngineHarness.connection, .syncAck(offset: offset, length: UInt32(payload.readableBytes), status: 0)))
        }
        let before = h.engine.metadata.bitmap.outOfSyncCount
        h.feed(.peerLost(EngineHarness.connection, reason: "test"))
        XCTAssertEqual(h.engine.metadata.bitmap.outOfSyncCount, before)
        XCTAssertEqual(before, Int(EngineHarness.size / 4096))
    }

    /// The target writes what the source sends, acknowledges it once on disk, and adopts the
    /// source's generations when told the resync is done.
    func testTargetAppliesAcknowledgesAndBecomesUpToDate() {
        var h = EngineHarness(node: "beta", peer: "alpha")
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "alpha", localResolves: false))
        var source = GenerationIdentifiers(current: 0x1234_5678_9ABC_DEF1)
        source.bitmap = 0
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(role: .primary, generation: source))))
        XCTAssertEqual(h.engine.session?.decision?.strategy, .becomeSyncTarget(full: true))
        XCTAssertEqual(h.engine.state.disk, .inconsistent)
        h.clear()
        h.feed(.peerMessage(EngineHarness.connection, .syncStart(sourceIsSender: true, totalBlocks: 1, full: true)))
        h.feed(.peerMessage(EngineHarness.connection, .syncData(offset: 8192, payload: ByteBuffer(repeating: 7, count: 4096))))
        guard let (token, write) = h.localWrites.first else { return XCTFail("resync data not written: \(h.actions)") }
        XCTAssertEqual(write.range, 8192..<12288)
        XCTAssertFalse(h.sent.contains { if case .syncAck = $0 { return true } else { return false } }, "acknowledged before its write")
        h.feed(.writeDone(token, nil))
        XCTAssertTrue(h.sent.contains { if case .syncAck(8192, 4096, 0) = $0 { return true } else { return false } })
        h.feed(.peerMessage(EngineHarness.connection, .syncDone(blocks: 1)))
        XCTAssertEqual(h.engine.state.disk, .upToDate)
        XCTAssertEqual(h.engine.metadata.superblock.generation.current & ~1, source.current & ~1)
        XCTAssertTrue(h.engine.metadata.superblock.flags.contains(.consistent))
    }

    /// The SyncTarget records its disk as Inconsistent before resync data may touch it.
    func testTargetHoldsResyncDataUntilInconsistentIsDurable() {
        var h = EngineHarness(node: "beta", peer: "alpha")
        h.holdMetadata = true
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "alpha", localResolves: false))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(role: .primary, generation: GenerationIdentifiers(current: 0x42)))))
        h.clear()
        h.feed(.peerMessage(EngineHarness.connection, .syncData(offset: 0, payload: ByteBuffer(repeating: 7, count: 4096))))
        XCTAssertTrue(h.localWrites.isEmpty, "resync data written before the Inconsistent flag was durable")
        h.releaseMetadata()
        XCTAssertEqual(h.localWrites.count, 1)
    }

    /// Hostile values on the wire are refused without a trap.
    func testHostileRangesFromThePeer() {
        var h = EngineHarness(node: "beta", peer: "alpha")
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "alpha", localResolves: false))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(role: .primary))))
        let hostile: [PeerMessage] = [
            .write(PeerWrite(sequence: 1, offset: UInt64.max - 10, length: 4096, kind: .trim)),
            .syncAck(offset: UInt64.max, length: UInt32.max, status: 0),
            .syncDone(blocks: UInt64.max),
            .verifyNotice(running: false, blocks: UInt64.max),
            .checksumRequest(offset: UInt64.max - 1, length: 4096, algorithm: "crc32c"),
            .dataRequest(id: 1, offset: UInt64.max - 1, length: UInt32.max),
            .syncStart(sourceIsSender: true, totalBlocks: UInt64.max, full: false),
            .bitmapPage(index: UInt32.max, bytes: ByteBuffer(repeating: 0xFF, count: 4096)),
        ]
        for message in hostile { h.feed(.peerMessage(EngineHarness.connection, message)) }
        h.tick()
        XCTAssertTrue(true, "no trap")
    }
}
