import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine
import XCTest

/// A failing local disk, event in, actions out: on-io-error, Diskless service through the peer,
/// detach and attach, disk-timeout and requests without data.
final class DiskFailureTests: XCTestCase {
    func detached(_ h: EngineHarness) -> (DiskFailure?, MetadataWrite)? {
        for case .diskDetached(let failure, let farewell) in h.actions { return (failure, farewell) }
        return nil
    }

    /// (on-io-error, does the failed local write reach the client as an error?, is the disk dropped?)
    func testFailedLocalWritePerPolicy() {
        let table: [(OnIOError, Bool, Bool)] = [(.passOn, true, false), (.detach, false, true), (.callLocalIOError, false, true)]
        for (policy, clientSeesError, detaches) in table {
            var h = EngineHarness { $0.onIOError = policy; $0.handlers = ["local-io-error"] }
            h.connectedPrimary()
            h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 8)))
            guard let (token, _) = h.localWrites.first, case .write(let w)? = h.sent.first else { return XCTFail("\(policy): no write") }
            h.feed(.writeDone(token, IOFailure(.io, "EIO")))
            h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
            switch h.completed(1) {
            case .failed?: XCTAssertTrue(clientSeesError, "\(policy): the write failed for the client")
            case .done?: XCTAssertFalse(clientSeesError, "\(policy): the write succeeded for the client")
            default: XCTFail("\(policy): the write did not complete")
            }
            XCTAssertEqual(detached(h) != nil, detaches, "\(policy)")
            XCTAssertEqual(h.engine.state.disk == .diskless || h.engine.state.disk == .failed, detaches, "\(policy): disk \(h.engine.state.disk)")
            XCTAssertEqual(h.engine.state.role, .primary, "\(policy): a failed disk does not demote")
            let ranHandler = h.actions.contains { if case .runHandler(_, "local-io-error", _) = $0 { return true } else { return false } }
            XCTAssertEqual(ranHandler, policy == .callLocalIOError, "\(policy): local-io-error handler")
            if detaches {
                XCTAssertEqual(detached(h)?.0?.cause, .ioError)
                XCTAssertEqual(detached(h)?.0?.offset, 8 * 4096)
                XCTAssertTrue(detached(h)?.1.superblock?.flags.contains(.diskFailed) == true, "the farewell records the failure")
            }
        }
    }

    /// The local write fails while the peer's disk is only Inconsistent (a SyncTarget): its copy
    /// would be overwritten by the resync once this disk is back, so the write fails.
    func testFailedLocalWriteWithAnInconsistentPeerFails() {
        var h = EngineHarness()
        h.feed(.command(1, .newCurrentUUID(clearBitmap: false)))
        h.feed(.command(2, .primary(force: true)))
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "beta", localResolves: true))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(disk: .inconsistent, generation: GenerationIdentifiers(current: 0)))))
        h.clear()
        h.feed(.clientWrite(3, EngineHarness.clientWrite(block: 1)))
        guard let (token, _) = h.localWrites.first, case .write(let w)? = h.sent.first(where: { if case .write = $0 { true } else { false } }) else {
            return XCTFail("no write: \(h.actions)")
        }
        h.feed(.writeDone(token, IOFailure(.io, "EIO")))
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        guard case .failed(.io, let message)? = h.completed(3) else { return XCTFail("completed as \(String(describing: h.completed(3)))") }
        XCTAssertTrue(message.contains("not UpToDate"), message)
    }

    /// A Diskless Primary: reads become data requests to the peer, writes go to the peer only and
    /// complete on its acknowledgement; nothing is issued to a local disk.
    func testDisklessPrimaryServesThroughThePeer() {
        var h = EngineHarness()
        h.connectedPrimary()
        h.feed(.command(5, .detach))
        XCTAssertEqual(h.engine.state.disk, .diskless)
        XCTAssertNotNil(detached(h))
        h.clear()
        h.feed(.clientRead(20, offset: 4096, length: 8192, kind: .read))
        guard case .dataRequest(let id, let offset, let length)? = h.sent.first else { return XCTFail("no data request: \(h.actions)") }
        XCTAssertEqual(offset, 4096)
        XCTAssertEqual(length, 8192)
        h.feed(.peerMessage(EngineHarness.connection, .dataReply(id: id, status: 0, payload: ByteBuffer(repeating: 7, count: 8192))))
        guard case .data(let data)? = h.completed(20) else { return XCTFail("read not served: \(h.actions)") }
        XCTAssertEqual(data.readableBytes, 8192)
        h.clear()
        h.feed(.clientWrite(21, EngineHarness.clientWrite(block: 2)))
        XCTAssertTrue(h.localWrites.isEmpty, "a Diskless node wrote locally")
        guard case .write(let w)? = h.sent.first else { return XCTFail("the write did not go to the peer: \(h.actions)") }
        XCTAssertNil(h.completed(21))
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        XCTAssertTrue(h.isDone(21))
        XCTAssertTrue(h.localWrites.isEmpty && h.localReads.isEmpty && h.syncs.isEmpty, "I/O to a detached disk: \(h.actions)")
    }

    /// The only UpToDate disk is never detached by the operator; a Primary without a connected
    /// UpToDate peer neither.
    func testOperatorDetachRefusals() {
        var alone = EngineHarness(peer: nil)
        alone.feed(.command(1, .newCurrentUUID(clearBitmap: false)))
        alone.feed(.command(2, .primary(force: true)))
        alone.clear()
        alone.feed(.command(3, .detach))
        XCTAssertEqual(alone.engine.state.disk, .upToDate)
        guard case .reply(3, false, let why)? = alone.actions.last else { return XCTFail("\(alone.actions)") }
        XCTAssertTrue(why.contains("refusing to detach"), why)

        var h = EngineHarness()
        h.connectedPrimary()
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(disk: .inconsistent))))
        h.clear()
        h.feed(.command(4, .detach))
        XCTAssertNotEqual(h.engine.state.disk, .diskless)
    }

    /// disk-timeout: a local request older than the limit detaches the disk at a tick.
    func testDiskTimeoutDetaches() {
        var h = EngineHarness { $0.diskTimeoutNanoseconds = 3_000_000_000 }
        h.connectedPrimary()
        h.feed(.clientWrite(1, EngineHarness.clientWrite(block: 4)))
        guard case .write(let w)? = h.sent.first else { return XCTFail() }
        h.feed(.peerMessage(EngineHarness.connection, .writeAck(sequence: w.sequence, status: 0)))
        for _ in 0..<25 { h.tick() }
        XCTAssertNil(detached(h), "detached before disk-timeout")
        for _ in 0..<15 { h.tick() }
        guard let (failure, _) = detached(h) else { return XCTFail("not detached after disk-timeout") }
        XCTAssertEqual(failure?.cause, .timeout)
        XCTAssertTrue(h.isDone(1), "the write the peer has completes without the stuck disk")
    }

    /// No disk here and no peer: a read fails with EIO at once, or waits with suspend-io until the
    /// operator's resume-io.
    func testNoDataAccessible() {
        for suspend in [false, true] {
            var h = EngineHarness { $0.suspendWithoutData = suspend }
            h.connectedPrimary()
            h.feed(.command(5, .detach))
            h.feed(.peerLost(EngineHarness.connection, reason: "test"))
            h.clear()
            h.feed(.clientRead(9, offset: 0, length: 4096, kind: .read))
            if suspend {
                XCTAssertNil(h.completed(9), "suspend-io: the read did not wait")
                XCTAssertEqual(h.engine.suspendedCount, 1)
                h.feed(.command(6, .resumeIO))
            }
            guard case .failed(.io, _)? = h.completed(9) else { return XCTFail("suspend \(suspend): \(String(describing: h.completed(9)))") }
        }
    }
}

extension DiskFailureTests {
    /// A Primary alone whose disk fails holds the newest data on that disk: once connected to a
    /// peer without it, the peer does not serve it, and promotion needs --force.
    func testDetachedDiskAheadOfThePeer() {
        var h = EngineHarness()
        h.feed(.command(1, .newCurrentUUID(clearBitmap: false)))
        let shared = h.engine.metadata.superblock.generation
        h.feed(.command(2, .primary(force: true)))
        XCTAssertNotEqual(h.engine.metadata.superblock.generation.currentIgnoringRole, shared.currentIgnoringRole,
                          "a Primary alone starts a new generation")
        h.feed(.clientWrite(3, EngineHarness.clientWrite(block: 1)))
        guard let (token, _) = h.localWrites.first else { return XCTFail() }
        h.feed(.writeDone(token, IOFailure(.io, "EIO")))
        XCTAssertFalse(h.engine.diskAttached)
        XCTAssertNotNil(h.engine.diskFailure?.dataGeneration)
        h.feed(.command(4, .secondary))
        h.feed(.peerConnected(EngineHarness.connection, peerNode: "beta", localResolves: true))
        h.feed(.peerMessage(EngineHarness.connection, .state(h.peerReport(generation: shared))))
        XCTAssertTrue(h.engine.state.detachedDataAhead)
        XCTAssertFalse(h.engine.state.servedByPeer, "the peer's older data served this node")
        h.clear()
        h.feed(.command(5, .primary(force: false)))
        guard case .reply(5, false, let why)? = h.actions.last else { return XCTFail("\(h.actions)") }
        XCTAssertTrue(why.contains("detached disk holds newer data"), why)
        h.feed(.command(6, .primary(force: true)))
        // One Primary at a time: the peer agrees first.
        guard case .roleRequest(primary: true)? = h.sent.last else { return XCTFail("no role request: \(h.actions)") }
        h.feed(.peerMessage(EngineHarness.connection, .roleReply(granted: true, reason: "")))
        XCTAssertEqual(h.engine.state.role, .primary)
        XCTAssertTrue(h.engine.state.servedByPeer)
    }
}
