import RepdCore
import XCTest

final class NodeStateTests: XCTestCase {
    func state(disk: DiskState, connection: ConnectionState = .connecting, peerRole: Role = .unknown, twoPrimaries: Bool = false) -> NodeState {
        var s = NodeState()
        s.allowTwoPrimaries = twoPrimaries
        _ = try? s.apply(.attach(disk))
        _ = try? s.apply(.connection(connection))
        if connection == .connected { _ = try? s.apply(.peer(role: peerRole, disk: .upToDate)) }
        return s
    }

    func testPromotionRules() {
        // (disk, force, connection, peer role, two primaries) -> refusal or resulting disk
        let table: [(DiskState, Bool, ConnectionState, Role, Bool, NodeState.Refusal?, DiskState?)] = [
            (.upToDate, false, .connecting, .unknown, false, nil, .upToDate),
            (.inconsistent, false, .connecting, .unknown, false, .noUpToDateDisk(.inconsistent), nil),
            (.inconsistent, true, .connecting, .unknown, false, nil, .upToDate),
            (.outdated, false, .connecting, .unknown, false, .noUpToDateDisk(.outdated), nil),
            (.outdated, true, .connecting, .unknown, false, nil, .upToDate),
            (.consistent, false, .connecting, .unknown, false, nil, .upToDate),
            (.diskless, true, .connecting, .unknown, false, .noDisk, nil),
            (.upToDate, false, .connected, .primary, false, .peerIsPrimary, nil),
            (.upToDate, false, .connected, .primary, true, nil, .upToDate),
            (.upToDate, false, .connected, .secondary, false, nil, .upToDate),
            // A SyncTarget with an UpToDate peer may be promoted without --force: it reads through the peer.
            (.inconsistent, false, .connected, .secondary, false, nil, .inconsistent),
            (.outdated, false, .connected, .secondary, false, .noUpToDateDisk(.outdated), nil),
        ]
        for (i, row) in table.enumerated() {
            var s = state(disk: row.0, connection: row.2, peerRole: row.3, twoPrimaries: row.4)
            let before = s
            do {
                _ = try s.apply(.promote(force: row.1))
                XCTAssertNil(row.5, "row \(i) should be refused")
                XCTAssertEqual(s.role, .primary, "row \(i)")
                XCTAssertEqual(s.disk, row.6, "row \(i)")
            } catch {
                XCTAssertEqual(error, row.5, "row \(i)")
                XCTAssertEqual(s, before, "row \(i): a refused change leaves the state alone")
            }
        }
    }

    func testEffectsOfPromotion() throws {
        var alone = state(disk: .upToDate)
        XCTAssertEqual(try alone.apply(.promote(force: false)), [.newCurrentGeneration, .writeMetadata])
        var connected = state(disk: .upToDate, connection: .connected, peerRole: .secondary)
        XCTAssertEqual(try connected.apply(.promote(force: false)), [.writeMetadata])
        var forced = state(disk: .inconsistent)
        XCTAssertEqual(try forced.apply(.promote(force: true)), [.forcedUpToDate, .newCurrentGeneration, .writeMetadata])
        XCTAssertEqual(try forced.apply(.promote(force: false)), [], "already Primary: nothing to do")
    }

    func testWritesNeedPrimaryUpToDate() throws {
        var s = state(disk: .upToDate)
        XCTAssertFalse(s.acceptsWrites)
        _ = try s.apply(.promote(force: false))
        XCTAssertTrue(s.acceptsWrites)
        _ = try s.apply(.demote)
        XCTAssertFalse(s.acceptsWrites)
        XCTAssertThrowsError(try { var p = s; _ = try p.apply(.promote(force: false)); _ = try p.apply(.detach) }())
    }

    func testLosingTheConnectionForgetsThePeer() throws {
        var s = state(disk: .upToDate, connection: .connected, peerRole: .primary, twoPrimaries: true)
        XCTAssertEqual(s.replication, .established)
        _ = try s.apply(.connection(.networkFailure))
        XCTAssertEqual(s.peerRole, .unknown)
        XCTAssertEqual(s.peerDisk, .unknown)
        XCTAssertEqual(s.replication, .off)
    }

    func testAnInconsistentPrimaryNeedsItsUpToDatePeer() throws {
        var s = state(disk: .inconsistent, connection: .connected, peerRole: .secondary)
        XCTAssertTrue(s.readsThroughPeer)
        XCTAssertTrue(s.servesReads)
        _ = try s.apply(.promote(force: false))
        XCTAssertTrue(s.acceptsWrites)
        _ = try s.apply(.connection(.connecting))
        XCTAssertFalse(s.readsThroughPeer)
        XCTAssertFalse(s.acceptsWrites, "alone, an Inconsistent Primary has nothing to write on")
        XCTAssertFalse(s.servesReads)
    }
}
