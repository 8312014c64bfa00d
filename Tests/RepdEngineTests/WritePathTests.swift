import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine
import XCTest

/// The write path, event in, actions out: when a write completes under each protocol, what a lost
/// link does to writes in flight, flushes and barriers.
final class WritePathTests: XCTestCase {
    /// (protocol, the peer's answer that must arrive, done before it?, done after it?)
    func testCompletionPerProtocol() {
        enum PeerEvent { case sent, received, written }
        let table: [(ReplicationMode, PeerEvent)] = [(.A, .sent), (.B, .received), (.C, .written)]
        for (replication, needed) in table {
            var h = EngineHarness(protocol: replication)
            h.connectedPrimary()
            h.feed(.clientWrite(10, EngineHarness.clientWrite(block: 3)))
            guard let (token, write) = h.localWrites.first, case .write(let peerWrite)? = h.sent.first else {
                return XCTFail("protocol \(replication): the write went neither to the disk nor to the peer: \(h.actions)")
            }
            XCTAssertEqual(write.range, 3 * 4096..<4 * 4096)
            XCTAssertTrue(write.replicated)
            XCTAssertEqual(peerWrite.offset, 3 * 4096)
            h.feed(.writeDone(token, nil))
            XCTAssertNil(h.completed(10), "protocol \(replication): completed on the local write alone")
            switch needed {
            case .sent: h.feed(.peerSent(EngineHarness.connection, sequence: peerWrite.sequence))
            case .received: h.feed(.peerMessage(EngineHarness.connection, .receiveAck(sequence: peerWrite.sequence)))
            case .written: h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: peerWrite.sequence, status: 0)))
            }
            XCTAssertTrue(h.isDone(10), "protocol \(replication): not completed after \(needed)")
        }
    }

    func testProtocolCWaitsForThePeerWhicheverIsFirst() {
        var h = EngineHarness()
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 0)))
        guard case .write(let w)? = h.sent.first, let (token, _) = h.localWrites.first else { return XCTFail() }
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        XCTAssertNil(h.completed(1), "completed before its local write")
        h.feed(.writeDone(token, nil))
        XCTAssertTrue(h.isDone(1))
    }

    /// A write the peer never acknowledged completes from the local disk when the link breaks,
    /// and its blocks are out of sync.
    func testLostLinkCompletesAndMarksUnacknowledgedWrites() {
        var h = EngineHarness()
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 5, blocks: 2)))
        guard let (token, _) = h.localWrites.first else { return XCTFail() }
        h.feed(.writeDone(token, nil))
        XCTAssertNil(h.completed(1))
        h.feed(.peerLost(EngineHarness.connection, reason: "test"))
        XCTAssertTrue(h.isDone(1))
        XCTAssertTrue(h.engine.metadata.bitmap.isOutOfSync(block: 5))
        XCTAssertTrue(h.engine.metadata.bitmap.isOutOfSync(block: 6))
        XCTAssertFalse(h.engine.metadata.bitmap.isOutOfSync(block: 7))
    }

    /// Acknowledged is not durable: until a barrier confirms a write, a lost link marks it too.
    func testAcknowledgedButUnconfirmedWritesAreMarkedOnLoss() {
        var h = EngineHarness()
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 9)))
        guard case .write(let w)? = h.sent.first, let (token, _) = h.localWrites.first else { return XCTFail() }
        h.feed(.writeDone(token, nil))
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        XCTAssertTrue(h.isDone(1))
        XCTAssertTrue(h.engine.awaitsPeerDurability)
        h.feed(.peerLost(EngineHarness.connection, reason: "test"))
        XCTAssertTrue(h.engine.metadata.bitmap.isOutOfSync(block: 9), "an unconfirmed write must be resynced")
    }

    func testABarrierConfirmsWhatWasAcknowledgedBeforeIt() {
        var h = EngineHarness()
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 9)))
        guard case .write(let w)? = h.sent.first, let (token, _) = h.localWrites.first else { return XCTFail() }
        h.feed(.writeDone(token, nil))
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        h.tick(1000)
        guard case .flush(let barrier)? = h.sent.first(where: { if case .flush = $0 { return true } else { return false } }) else {
            return XCTFail("no barrier within a second: \(h.actions)")
        }
        XCTAssertGreaterThan(barrier, w.sequence)
        h.feed(.peerMessage(EngineHarness.connection, .flushAck(sequence: barrier, status: 0)))
        XCTAssertFalse(h.engine.awaitsPeerDurability)
        h.feed(.peerLost(EngineHarness.connection, reason: "test"))
        XCTAssertFalse(h.engine.metadata.bitmap.isOutOfSync(block: 9), "a confirmed write is on both disks")
    }

    /// The engine's own barriers cost the peer a data sync each: at most one per `barrierInterval`.
    func testTheEnginesOwnBarriersArePacedByTheInterval() {
        var h = EngineHarness()
        h.connectedPrimary()
        var sentBarriers: [UInt64] = []
        func collect() { sentBarriers += h.sent.compactMap { if case .flush(let s) = $0 { return s } else { return nil } }; h.clear() }
        // The first barrier goes with the first acknowledgement (none was sent before).
        h.acknowledgedWrite(1, block: 9)
        collect()
        guard let first = sentBarriers.first else { return XCTFail("no first barrier: \(h.actions)") }
        h.feed(.peerMessage(EngineHarness.connection, .flushAck(sequence: first, status: 0)))
        sentBarriers.removeAll()
        // Writes go on, one a tick: the next barrier comes a second after the first.
        for step in 1...10 {
            h.tick()
            collect()
            XCTAssertEqual(sentBarriers.count, step < 10 ? 0 : 1, "barriers \(step * 100) ms after the last one")
            h.acknowledgedWrite(ClientRequestID(10 + step), block: UInt64(10 + step))
            collect()
        }
        XCTAssertEqual(sentBarriers.count, 1)
    }

    /// A pause in the writes (a tick without acknowledgements) confirms what waits at once.
    func testAPauseInTheWritesAsksForABarrier() {
        var h = EngineHarness { $0.barrierInterval = 60_000_000_000 }
        h.connectedPrimary()
        h.tick()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 9)))
        guard case .write(let w)? = h.sent.first, let (token, _) = h.localWrites.first else { return XCTFail("\(h.actions)") }
        h.feed(.writeDone(token, nil))
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        h.clear()
        h.tick()
        XCTAssertTrue(h.sent.isEmpty, "the tick right after the acknowledgement: writes may still come: \(h.actions)")
        h.tick()
        guard case .flush(let barrier)? = h.sent.first else { return XCTFail("no barrier after a quiet tick: \(h.actions)") }
        h.feed(.peerMessage(EngineHarness.connection, .flushAck(sequence: barrier, status: 0)))
        XCTAssertFalse(h.engine.awaitsPeerDurability)
    }

    /// A full activity log whose extents wait for the peer's durability asks for a barrier at once.
    func testAFullActivityLogAsksForABarrierAtOnce() {
        var h = EngineHarness { $0.activityLogExtents = 2; $0.barrierInterval = 60_000_000_000 }
        h.connectedPrimary()
        h.tick()
        for (id, block) in [(1, 0), (2, 1024)] as [(ClientRequestID, UInt64)] {
            h.acknowledgedWrite(id, block: block)
        }
        h.clear()
        h.feed(.clientWrite(3, EngineHarness.clientWrite(block: 2048)))
        XCTAssertTrue(h.localWrites.isEmpty, "a third extent fits no slot of two")
        guard case .flush(let barrier)? = h.sent.first(where: { if case .flush = $0 { return true } else { return false } }) else {
            return XCTFail("no barrier for the full activity log: \(h.actions)")
        }
        h.clear()
        h.feed(.peerMessage(EngineHarness.connection, .flushAck(sequence: barrier, status: 0)))
        XCTAssertEqual(h.localWrites.count, 1, "the write goes on once the barrier released the extents: \(h.actions)")
    }

    /// An extent nobody wrote for `activityLogRetireAfter` leaves the activity log once the
    /// peer confirmed its writes durable, in a transaction after a data sync; one whose writes the
    /// peer has not confirmed stays.
    func testIdleExtentsLeaveTheActivityLog() {
        var h = EngineHarness { $0.activityLogRetireAfter = 2_000_000_000; $0.barrierInterval = 60_000_000_000 }
        h.connectedPrimary()
        h.acknowledgedWrite(1, block: 0)
        h.tick()                                   // the tick right after the acknowledgement
        h.clear()
        h.tick()                                   // a quiet tick: a barrier for the write
        guard case .flush(let barrier)? = h.sent.first else { return XCTFail("no barrier: \(h.actions)") }
        h.acknowledgedWrite(2, block: 2048)        // extent 2: the peer never confirms it
        h.feed(.peerMessage(EngineHarness.connection, .flushAck(sequence: barrier, status: 0)))
        XCTAssertEqual(h.engine.metadata.activityLog.hotExtents, [0, 2])
        h.clear()
        for _ in 0..<10 { h.tick() }
        XCTAssertEqual(h.engine.metadata.activityLog.hotExtents, [0, 2], "not idle for 2 s yet")
        for _ in 0..<25 { h.tick() }
        let retirements = h.actions.compactMap { action -> MetadataWrite? in
            if case .persist(_, let write) = action, !write.activityLog.isEmpty { return write } else { return nil }
        }
        XCTAssertEqual(retirements.count, 1, "\(h.actions)")
        XCTAssertEqual(retirements.first?.syncDataFirst, true, "the data is durable before the log stops covering it")
        XCTAssertEqual(retirements.first?.activityLog.first?.0.updates.map(\.extent), [ActivityLogTransaction.emptyExtent])
        XCTAssertEqual(h.engine.metadata.activityLog.hotExtents, [2], "extent 2's write waits for the peer's durability")
    }

    /// A client flush completes when the local sync and the peer's flush are both done.
    func testFlushNeedsBothDisks() {
        var h = EngineHarness()
        h.connectedPrimary()
        h.feed(.clientFlush(3))
        guard let sync = h.syncs.first, case .flush(let sequence)? = h.sent.first else { return XCTFail("\(h.actions)") }
        h.feed(.syncDone(sync, nil))
        XCTAssertNil(h.completed(3))
        h.feed(.peerMessage(EngineHarness.connection, .flushAck(sequence: sequence, status: 0)))
        XCTAssertTrue(h.isDone(3))
    }

    /// The peer's flush is synced only after every write received before it is on disk.
    func testAFlushFromThePeerWaitsForEarlierWrites() {
        var h = EngineHarness(node: "beta", peer: "alpha")
        h.feed(.command(1, .newCurrentUUID(clearBitmap: false)))
        h.feed(.command(2, .primary(force: true)))
        h.feed(.command(3, .secondary))
        for case .syncLocal(let token) in h.actions { h.feed(.syncDone(token, nil)) }
        let generation = h.engine.metadata.superblock.generation
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "alpha", localResolves: false))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(role: .primary, generation: generation))))
        h.clear()
        h.feed(.peerMessage(EngineHarness.connection, EngineHarness.peerWrite(1, block: 4)))
        h.feed(.peerMessage(EngineHarness.connection, .flush(sequence: 2)))
        XCTAssertTrue(h.syncs.isEmpty, "synced before the write it must cover reached the disk")
        guard let (token, _) = h.localWrites.first else { return XCTFail("\(h.actions)") }
        h.feed(.writeDone(token, nil))
        XCTAssertEqual(h.syncs.count, 1)
        XCTAssertTrue(h.sent.contains { if case .writeAck(1, 0) = $0 { return true } else { return false } })
        h.feed(.syncDone(h.syncs[0], nil))
        XCTAssertTrue(h.sent.contains { if case .flushAck(2, 0) = $0 { return true } else { return false } })
    }

    /// Alone, a Primary marks every write out of sync and completes from its disk.
    func testAlonePrimaryMarksWrites() {
        var h = EngineHarness()
        h.feed(.command(1, .primary(force: true)))
        h.clear()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 2)))
        XCTAssertTrue(h.sent.isEmpty)
        guard let (token, write) = h.localWrites.first else { return XCTFail() }
        XCTAssertFalse(write.replicated)
        XCTAssertTrue(h.engine.metadata.bitmap.isOutOfSync(block: 2))
        h.feed(.writeDone(token, nil))
        XCTAssertTrue(h.isDone(1))
    }

    func testRefusalsTable() {
        var secondary = EngineHarness()
        secondary.feed(.clientWrite(1, EngineHarness.clientWrite(block: 0)))
        guard case .failed(.permission, _)? = secondary.completed(1) else { return XCTFail("a Secondary took a write") }

        var primary = EngineHarness()
        primary.feed(.command(1, .primary(force: true)))
        primary.feed(.clientWrite(2, ClientWrite(range: EngineHarness.size..<(EngineHarness.size + 4096), kind: .data,
                                                 payload: ByteBuffer(repeating: 0, count: 4096))))
        guard case .failed(.noSpace, _)? = primary.completed(2) else { return XCTFail("a write past the end was taken") }
        primary.feed(.beginShutdown)
        primary.feed(.clientWrite(3, EngineHarness.clientWrite(block: 0)))
        guard case .failed(.shutdown, _)? = primary.completed(3) else { return XCTFail("a write during shutdown was taken") }
    }

    /// A trim of the whole disk needs more activity-log extents than the table holds: it goes in
    /// parts and completes once, when the last part does.
    func testAHugeTrimGoesInParts() {
        var h = EngineHarness()
        h.feed(.command(1, .primary(force: true)))
        h.clear()
        h.feed(.clientWrite(5, ClientWrite(range: 0..<EngineHarness.size, kind: .trim)))
        var guardCount = 0
        while h.completed(5) == nil && guardCount < 100 {
            guardCount += 1
            let writes = h.localWrites
            h.clear()
            for (token, write) in writes {
                XCTAssertLessThanOrEqual(ActivityLog.extents(of: write.range).count, 8)
                h.feed(.writeDone(token, nil))
            }
        }
        XCTAssertTrue(h.isDone(5), "the trim did not complete")
        XCTAssertEqual(h.completions.count, 1)
    }
}
