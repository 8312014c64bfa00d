import XCTest
@testable import RepdCore

final class ActivityLogTests: XCTestCase {
    private let mib: UInt64 = 1 << 20

    func testExtentsOfARange() {
        XCTAssertEqual(ActivityLog.extents(of: 0..<4096), 0...0)
        XCTAssertEqual(ActivityLog.extents(of: (4 * mib - 4096)..<(4 * mib + 4096)), 0...1)
        XCTAssertEqual(ActivityLog.extents(of: (8 * mib)..<(12 * mib)), 2...2)
        XCTAssertEqual(ActivityLog.byteRange(ofExtent: 3), (12 * mib)..<(16 * mib))
    }

    func testAColdExtentWaitsForItsTransaction() {
        var al = ActivityLog(slotCount: 4)
        XCTAssertFalse(al.begin(0...0))
        XCTAssertTrue(al.hasQueuedExtents)
        // A second write to the same cold extent queues nothing new.
        XCTAssertFalse(al.begin(0...0))
        let prepared = try! XCTUnwrap(al.prepareTransaction())
        XCTAssertEqual(prepared.transaction.updates, [.init(slot: 0, extent: 0)])
        XCTAssertEqual(prepared.evicted, [])
        XCTAssertEqual(prepared.transaction.transactionNumber, 1)
        XCTAssertEqual(prepared.ringSlot, 1)
        // Not hot until committed.
        XCTAssertFalse(al.begin(0...0))
        XCTAssertNil(al.prepareTransaction(), "one transaction at a time, and nothing new is queued")
        al.committed()
        XCTAssertTrue(al.begin(0...0))
        XCTAssertTrue(al.begin(0...0))
        XCTAssertEqual(al.hotExtents, [0])
        XCTAssertEqual(al.transactionCount, 1)
    }

    func testHotExtentsNeedNoTransaction() {
        var al = ActivityLog(slotCount: 8, extents: [5, 6])
        XCTAssertTrue(al.begin(5...6))
        XCTAssertFalse(al.hasQueuedExtents)
        XCTAssertNil(al.prepareTransaction())
    }

    func testEvictsTheLeastRecentlyUsedIdleExtentOnly() {
        var al = ActivityLog(slotCount: 2, extents: [10, 11])
        XCTAssertTrue(al.begin(10...10))   // 10 busy
        XCTAssertTrue(al.begin(11...11))
        al.end(11...11)                    // 11 idle
        XCTAssertFalse(al.begin(12...12))
        var prepared = try! XCTUnwrap(al.prepareTransaction())
        XCTAssertEqual(prepared.evicted, [11], "the busy extent 10 stays")
        XCTAssertEqual(prepared.transaction.updates, [.init(slot: 1, extent: 12)])
        al.committed()
        XCTAssertTrue(al.begin(12...12))
        // Both slots busy now: a new extent waits, no transaction can be made.
        XCTAssertFalse(al.begin(13...13))
        XCTAssertNil(al.prepareTransaction())
        al.end(10...10)
        prepared = try! XCTUnwrap(al.prepareTransaction())
        XCTAssertEqual(prepared.evicted, [10])
        XCTAssertEqual(prepared.transaction.updates, [.init(slot: 0, extent: 13)])
    }

    func testRetiresTheIdleExtentsUsedBeforeTheMark() {
        var al = ActivityLog(slotCount: 8, extents: [1, 2, 3])
        XCTAssertTrue(al.begin(1...1)); al.end(1...1)
        let mark = al.useClock
        XCTAssertTrue(al.begin(2...2))                    // busy: a write in flight
        XCTAssertTrue(al.begin(3...3)); al.end(3...3)     // idle, but used after the mark
        let prepared = try! XCTUnwrap(al.prepareRetirement(usedAtOrBefore: mark))
        XCTAssertEqual(prepared.evicted, [1])
        XCTAssertEqual(prepared.transaction.updates, [.init(slot: 0, extent: ActivityLogTransaction.emptyExtent)])
        XCTAssertNil(al.prepareRetirement(usedAtOrBefore: mark), "nothing else is idle since the mark")
        al.committed()
        XCTAssertEqual(al.hotExtents, [2, 3])
        XCTAssertFalse(al.begin(1...1), "a retired extent is cold again")
        // What a crash would replay: the table without the retired extent.
        let replay = ActivityLog.replay([.success(prepared.transaction)], slotCount: 8)
        XCTAssertEqual(replay.extents, [2, 3])
        // The extent a waiting write wants is never retired; the free slot takes it.
        al.end(2...2)
        let again = try! XCTUnwrap(al.prepareRetirement(usedAtOrBefore: al.useClock))
        XCTAssertEqual(Set(again.evicted), [2, 3])
        al.committed()
        XCTAssertTrue(al.hotExtents.isEmpty)
    }

    func testRetirementNeverRunsBesideAnotherTransaction() {
        var al = ActivityLog(slotCount: 4, extents: [1])
        XCTAssertFalse(al.begin(2...2))
        _ = try! XCTUnwrap(al.prepareTransaction())
        XCTAssertNil(al.prepareRetirement(usedAtOrBefore: al.useClock))
        al.committed()
        XCTAssertEqual(al.prepareRetirement(usedAtOrBefore: al.useClock)?.evicted.sorted(), [1, 2])
    }

    func testLeastRecentlyUsedOrder() {
        var al = ActivityLog(slotCount: 3, extents: [1, 2, 3])
        for e: UInt32 in [3, 1, 2] { XCTAssertTrue(al.begin(e...e)); al.end(e...e) }
        XCTAssertFalse(al.begin(4...4))
        XCTAssertEqual(al.prepareTransaction()?.evicted, [3])
    }

    func testAtMostSixtyFourUpdatesPerTransaction() {
        var al = ActivityLog(slotCount: 100)
        XCTAssertFalse(al.begin(0...69))
        let first = try! XCTUnwrap(al.prepareTransaction())
        XCTAssertEqual(first.transaction.updates.count, 64)
        al.committed()
        XCTAssertTrue(al.hasQueuedExtents)
        let second = try! XCTUnwrap(al.prepareTransaction())
        XCTAssertEqual(second.transaction.updates.map(\.extent), Array(64...69))
        al.committed()
        XCTAssertTrue(al.begin(0...69))
    }

    func testFailedTransactionRequeues() {
        var al = ActivityLog(slotCount: 4)
        XCTAssertFalse(al.begin(7...7))
        _ = al.prepareTransaction()
        al.failed()
        XCTAssertFalse(al.isHot(7))
        XCTAssertTrue(al.hasQueuedExtents)
        _ = al.prepareTransaction()
        al.committed()
        XCTAssertTrue(al.isHot(7))
    }

    /// Whatever the sequence of transactions, replaying the newest 64 ring blocks gives the table.
    func testReplayOfTheRingRestoresTheTable() throws {
        for slotCount in [3, 100, 1237, 2000] {
            var al = ActivityLog(slotCount: slotCount)
            var ring = [ActivityLogTransaction?](repeating: nil, count: Geometry.activityLogSlotCount)
            for (slot, t) in al.fullTableTransactions() { ring[slot] = t }
            var extent: UInt32 = 0
            for round in 0..<300 {
                let count = UInt32(1 + round % min(5, slotCount))
                XCTAssertFalse(al.begin(extent...(extent + count - 1)))
                while let prepared = al.prepareTransaction() {
                    ring[prepared.ringSlot] = prepared.transaction
                    al.committed()
                }
                XCTAssertTrue(al.begin(extent...(extent + count - 1)))
                al.end(extent...(extent + count - 1))
                extent = (extent + count * 7) % 5000
            }
            // Round trip through the on-disk encoding, as recovery reads it.
            let blocks = ring.map { t -> Result<ActivityLogTransaction?, MetadataError> in
                guard let t else { return .success(nil) }
                return Result { () throws(MetadataError) in try ActivityLogTransaction.decode(t.encoded()) }
            }
            let replay = ActivityLog.replay(blocks, slotCount: slotCount)
            XCTAssertEqual(replay.slots, al.slots, "slotCount \(slotCount)")
            XCTAssertEqual(replay.lastTransactionNumber, al.nextTransactionNumber - 1)
            XCTAssertEqual(replay.extents, Set(al.hotExtents).sorted())
        }
    }

    func testReplaySkipsDamagedBlocksAndStartsEmpty() {
        let empty = ActivityLog.replay(Array(repeating: .success(nil), count: 64), slotCount: 10)
        XCTAssertEqual(empty.extents, [])
        XCTAssertEqual(empty.lastTransactionNumber, 0)
        let t = ActivityLogTransaction(transactionNumber: 5, updates: [.init(slot: 2, extent: 9)])
        var bad = t.encoded()
        bad[100] ^= 1
        let blocks: [Result<ActivityLogTransaction?, MetadataError>] = [
            .success(t),
            Result { () throws(MetadataError) in try ActivityLogTransaction.decode(bad) },
        ]
        let replay = ActivityLog.replay(blocks, slotCount: 10)
        XCTAssertEqual(replay.extents, [9])
        XCTAssertEqual(replay.damagedBlocks, 1)
    }

    func testRestoredTableContinuesNumbering() {
        var al = ActivityLog(slotCount: 4, extents: [1, ActivityLogTransaction.emptyExtent, 3], nextTransactionNumber: 77)
        XCTAssertEqual(al.hotExtents, [1, 3])
        let full = al.fullTableTransactions()
        XCTAssertEqual(full.map(\.transaction.transactionNumber), [77])
        XCTAssertEqual(full[0].transaction.context, [1, ActivityLogTransaction.emptyExtent, 3, ActivityLogTransaction.emptyExtent])
        XCTAssertEqual(full[0].ringSlot, 77 % 64)
    }
}
