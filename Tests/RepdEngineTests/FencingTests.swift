import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine
import XCTest

/// Fencing, event in, actions out: what losing the peer while Primary does under each policy,
/// what each fence-peer exit code does, the outdate request, and one Primary at a time.
final class FencingTests: XCTestCase {
    func fencePeerToken(_ h: EngineHarness) -> IOToken? {
        for case .runHandler(let token, "fence-peer", _) in h.actions { return token }
        return nil
    }

    func fencedPrimary(_ policy: FencingPolicy) -> EngineHarness {
        var h = EngineHarness { $0.fencing = policy; $0.handlers = ["fence-peer", "unfence-peer"] }
        h.connectedPrimary()
        return h
    }

    /// resource-and-stonith: a write the peer did not acknowledge before the link went is held,
    /// and new requests wait, until the handler's answer; resource-only holds nothing.
    func testTheLinkGoesWhilePrimary() {
        for policy in [FencingPolicy.resourceAndStonith, .resourceOnly, .dontCare] {
            var h = fencedPrimary(policy)
            h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 3)))
            guard let (token, _) = h.localWrites.first else { return XCTFail() }
            h.feed(.writeDone(token, nil))
            h.feed(.peerLost(EngineHarness.connection, reason: "cut"))
            h.feed(.clientWrite(2, EngineHarness.clientWrite(block: 9)))
            let ran = fencePeerToken(h) != nil
            XCTAssertEqual(ran, policy != .dontCare, "\(policy): fence-peer")
            switch policy {
            case .resourceAndStonith:
                XCTAssertNil(h.completed(1), "stonith: acknowledged before the peer was fenced")
                XCTAssertNil(h.completed(2), "stonith: a new write went on while frozen")
                XCTAssertEqual(h.engine.suspendReasons, [.fencing])
                let before = h.engine.metadata.superblock.generation.current
                h.feed(.handlerFinished(fencePeerToken(h)!, .exited(4)))
                XCTAssertNotEqual(h.engine.metadata.superblock.generation.current, before, "the new generation starts once fenced")
                XCTAssertTrue(h.isDone(1), "stonith: the held write completes once the peer is fenced")
                XCTAssertEqual(h.engine.state.peerDisk, .outdated)
                XCTAssertTrue(h.engine.metadata.superblock.flags.contains(.peerOutdated))
                XCTAssertTrue(h.engine.suspendReasons.isEmpty)
            case .resourceOnly, .dontCare:
                XCTAssertTrue(h.isDone(1), "\(policy): the write completes from the local disk")
                XCTAssertTrue(h.engine.suspendReasons.isEmpty)
            }
        }
    }

    /// (exit code, does this node stay writable?, is its disk Outdated?, does I/O stay frozen?)
    func testFencePeerExitCodes() {
        let table: [(Int32, Bool, Bool, Bool)] = [
            (3, true, false, false), (4, true, false, false), (5, true, false, false), (7, true, false, false),
            (6, false, true, false), (1, false, false, true), (0, false, false, true),
        ]
        for (code, writable, outdated, frozen) in table {
            var h = fencedPrimary(.resourceAndStonith)
            h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 3)))
            guard let (token, _) = h.localWrites.first else { return XCTFail() }
            h.feed(.writeDone(token, nil))
            h.feed(.peerLost(EngineHarness.connection, reason: "cut"))
            h.feed(.handlerFinished(fencePeerToken(h)!, .exited(code)))
            XCTAssertEqual(h.engine.state.acceptsWrites && !h.engine.suspendReasons.contains(.fencing), writable, "exit \(code): writable")
            XCTAssertEqual(h.engine.state.disk == .outdated, outdated, "exit \(code): Outdated")
            XCTAssertEqual(h.engine.suspendReasons.contains(.fencing), frozen, "exit \(code): frozen")
            switch h.completed(1) {
            case .done?: XCTAssertTrue(writable, "exit \(code): acknowledged")
            case .failed?: XCTAssertTrue(outdated, "exit \(code): failed")
            case nil: XCTAssertTrue(frozen, "exit \(code): still held")
            default: XCTFail()
            }
            if frozen {
                h.feed(.command(9, .resumeIO))
                XCTAssertTrue(h.isDone(1), "exit \(code): resume-io lets the held write complete")
            }
        }
    }

    /// The peer's handler asks this node to outdate itself.
    func testOutdateRequests() {
        func answer(_ h: EngineHarness, _ id: CommandID) -> String? {
            for case .reply(id, _, let message) in h.actions { return message }
            return nil
        }
        // A disconnected Secondary is outdated, durably.
        var s = EngineHarness(node: "beta", peer: "alpha")
        s.feed(.command(1, .newCurrentUUID(clearBitmap: false)))
        s.feed(.command(2, .primary(force: true)))
        s.feed(.command(3, .secondary))
        for token in s.syncs { s.feed(.syncDone(token, nil)) }
        XCTAssertEqual(s.engine.state.role, .secondary)
        s.feed(.command(4, .outdate(byPeer: true)))
        XCTAssertEqual(answer(s, 4)?.prefix(2), "4 ")
        XCTAssertEqual(s.engine.state.disk, .outdated)
        XCTAssertFalse(s.engine.metadata.superblock.flags.contains(.wasUpToDate))
        // While connected it is refused (the handler asks again).
        var c = fencedPrimary(.resourceAndStonith)
        c.feed(.command(5, .outdate(byPeer: true)))
        XCTAssertEqual(answer(c, 5)?.prefix(3), "20 ")
        // Two frozen Primaries: alpha (its name sorts first) stays, beta is outdated.
        for (node, peer, expected) in [("alpha", "beta", "6 "), ("beta", "alpha", "4 ")] {
            var p = EngineHarness(node: node, peer: peer) { $0.fencing = .resourceAndStonith; $0.handlers = ["fence-peer"]; $0.allowTwoPrimaries = true }
            p.connectedPrimary()
            p.feed(.peerLost(EngineHarness.connection, reason: "cut"))
            p.feed(.command(6, .outdate(byPeer: true)))
            XCTAssertEqual(answer(p, 6)?.prefix(2), Substring(expected), "\(node)")
            XCTAssertEqual(p.engine.state.disk == .outdated, expected == "4 ", "\(node)")
        }
    }

    /// Without allow-two-primaries, a connected promotion waits for the peer's consent; of two at
    /// the same instant, the node whose name sorts first wins.
    func testOnePrimaryAtATime() {
        for (localResolves, peerAsksFirst, wins) in [(true, true, true), (false, true, false)] {
            var h = EngineHarness()
            h.feed(.command(1, .newCurrentUUID(clearBitmap: false)))
            let generation = h.engine.metadata.superblock.generation
            h.feed(.peerConnected(EngineHarness.connection, peerNode: "beta", localResolves: localResolves))
            h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(generation: generation))))
            h.clear()
            h.feed(.command(2, .primary(force: false)))
            guard case .roleRequest(primary: true)? = h.sent.last else { return XCTFail("no request: \(h.actions)") }
            XCTAssertEqual(h.engine.state.role, .secondary, "promoted before the peer agreed")
            if peerAsksFirst {
                h.feed(.peerMessage(EngineHarness.connection, .roleRequest(primary: true)))
                guard case .roleReply(let granted, _)? = h.sent.last else { return XCTFail() }
                XCTAssertEqual(granted, !wins)
                h.feed(.peerMessage(EngineHarness.connection, .roleReply(granted: wins, reason: wins ? "" : "beta wins")))
            }
            XCTAssertEqual(h.engine.state.role, wins ? .primary : .secondary, "localResolves \(localResolves)")
        }
    }

    /// A SyncSource Primary waiting for its before-resync-source handler (an LVM snapshot that
    /// takes minutes) still completes its applications' writes: the peer's acknowledgements are
    /// not held back with the resync's messages.
    func testWritesGoOnWhileBeforeResyncSourceRuns() {
        var h = EngineHarness { $0.handlers = ["before-resync-source"] }
        h.connectedPrimary()
        h.feed(.command(3, .invalidateRemote(full: false)))
        guard let handler = h.actions.compactMap({ action -> IOToken? in
            if case .runHandler(let token, "before-resync-source", _) = action { return token } else { return nil }
        }).first else { return XCTFail("before-resync-source did not run") }
        XCTAssertNotNil(h.engine.session?.pendingSyncStart)
        h.clear()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 4)))
        guard case .write(let w)? = h.sent.first, let (token, _) = h.localWrites.first else { return XCTFail() }
        h.feed(.writeDone(token, nil))
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        XCTAssertTrue(h.isDone(1), "the write waited for the before-resync-source handler")
        h.feed(.handlerFinished(handler, .exited(0)))
        XCTAssertNil(h.engine.session?.pendingSyncStart)
        XCTAssertNotNil(h.engine.session?.resync, "the resync starts once the handler succeeded")
    }

    /// A detach while the before-resync handler runs: no resync starts afterwards, and nothing
    /// the peer sent meanwhile is lost (its write is acknowledged).
    func testDetachWhileBeforeResyncTargetRuns() {
        var h = EngineHarness { $0.handlers = ["before-resync-target"] }
        h.feed(.command(1, .newCurrentUUID(clearBitmap: false)))
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "beta", localResolves: true))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(role: .primary))))
        h.feed(.command(3, .invalidate(full: false)))
        guard let handler = h.actions.compactMap({ action -> IOToken? in
            if case .runHandler(let token, "before-resync-target", _) = action { return token } else { return nil }
        }).first else { return XCTFail("before-resync-target did not run") }
        h.clear()
        h.feed(.peerMessage(EngineHarness.connection, EngineHarness.peerWrite(41, block: 2)))
        XCTAssertTrue(h.localWrites.isEmpty, "a peer write applied while the handler runs")
        h.feed(.command(4, .detach))
        h.feed(.handlerFinished(handler, .exited(0)))
        XCTAssertNil(h.engine.session?.pendingSyncStart)
        XCTAssertNil(h.engine.session?.resync, "a resync started without a disk")
        let answered = h.sent.contains { if case .writeAck(41, _) = $0 { return true } else { return false } }
        XCTAssertTrue(answered, "the peer's write that waited for the handler was never answered")
    }

    /// A frozen Primary outdated by the peer's handler acknowledges nothing afterwards, not even
    /// a write the peer had acknowledged whose local part was still in flight when it was
    /// outdated (simulator seed 7469: it completed while apart, after the node was outdated).
    func testOutdatedPrimaryAcknowledgesNothingInFlight() {
        var p = EngineHarness(node: "beta", peer: "alpha") { $0.fencing = .resourceAndStonith; $0.handlers = ["fence-peer"]; $0.allowTwoPrimaries = true }
        p.connectedPrimary()
        p.feed(.clientWrite(1, EngineHarness.clientWrite(block: 6)))
        // The peer acknowledged it; this disk's write is still in flight when the link goes.
        guard case .write(let w)? = p.sent.first, p.localWrites.count == 1 else { return XCTFail() }
        p.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        p.feed(.peerLost(EngineHarness.connection, reason: "cut"))
        p.feed(.command(6, .outdate(byPeer: true)))
        XCTAssertEqual(p.engine.state.disk, .outdated)
        for (token, _) in p.localWrites { p.feed(.writeDone(token, nil)) }
        XCTAssertNotNil(p.completed(1), "the write never completed")
        XCTAssertFalse(p.isDone(1), "an Outdated Primary acknowledged a write after it was outdated")
    }
}
