import RepdCore
import XCTest

final class WriteConflictTrackerTests: XCTestCase {
    func testOverlappingWritesStartInAdmissionOrder() {
        var t = WriteConflictTracker()
        let a = t.admit(0..<8192, origin: .local, peerDone: false)
        let b = t.admit(4096..<12288, origin: .peer, peerDone: true)
        let c = t.admit(16384..<20480, origin: .local, peerDone: false)
        let d = t.admit(8192..<16384, origin: .local, peerDone: false)
        XCTAssertTrue(a.mayStart)
        XCTAssertFalse(b.mayStart, "overlaps a")
        XCTAssertTrue(c.mayStart, "disjoint")
        XCTAssertFalse(d.mayStart, "overlaps b, which waits")
        XCTAssertEqual(t.markLocalDone(a.id), [b.id], "b may go once a is on disk; d still waits for b")
        XCTAssertEqual(t.markLocalDone(b.id), [d.id])
        XCTAssertEqual(t.markLocalDone(c.id), [])
    }

    func testPeerAcknowledgementDoesNotBlockButIsTrackedForConflicts() {
        var t = WriteConflictTracker()
        let a = t.admit(0..<4096, origin: .local, peerDone: false)
        _ = t.markLocalDone(a.id)
        XCTAssertTrue(t.admit(0..<4096, origin: .peer, peerDone: true).mayStart, "a is on the local disk")
        XCTAssertEqual(t.unacknowledgedLocalOverlaps(2048..<8192), [2048..<4096], "a is not yet acknowledged by the peer")
        t.markPeerDone(a.id)
        XCTAssertEqual(t.unacknowledgedLocalOverlaps(0..<8192), [])
        XCTAssertEqual(t.awaitingPeer.count, 0)
    }

    func testFinishedOperationsAreForgotten() {
        var t = WriteConflictTracker()
        let a = t.admit(0..<4096, origin: .local, peerDone: false)
        _ = t.markLocalDone(a.id)
        XCTAssertEqual(t.count, 1)
        t.markPeerDone(a.id)
        XCTAssertEqual(t.count, 0)
        XCTAssertNil(t.operation(a.id))
    }

    func testRangeSubtraction() {
        let r: Range<UInt64> = 0..<100
        XCTAssertEqual(r.subtracting([10..<20, 50..<60]), [0..<10, 20..<50, 60..<100])
        XCTAssertEqual(r.subtracting([0..<100]), [])
        XCTAssertEqual(r.subtracting([90..<200]), [0..<90])
        XCTAssertEqual(r.subtracting([200..<300]), [0..<100])
    }
}
