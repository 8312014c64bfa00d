import NBDProtocol
import NIOCore
import PeerProtocol
import RepdCore
import RepdNet

/// Work to do after the resource lock is released: completing client promises and starting
/// I/O must not run under the lock (their callbacks take it again).
typealias Effects = [() -> Void]

/// A write from a local NBD client before admission (it may wait for the activity log).
struct WriteRequest {
    let range: Range<UInt64>
    let kind: PeerWrite.Kind
    let fua: Bool
    let noHole: Bool
    let fastZero: Bool
    let payload: ByteBuffer?
    let promise: EventLoopPromise<NBDOutcome>
}

/// A write from a local NBD client, from admission until both disks are done.
struct LocalWrite {
    let id: UInt64
    let range: Range<UInt64>
    let kind: PeerWrite.Kind
    let fua: Bool
    let noHole: Bool
    let fastZero: Bool
    let payload: ByteBuffer?
    let promise: EventLoopPromise<NBDOutcome>
    var replicated: Bool
    let startedAt: UInt64
    var sequence: UInt64?
    var localDone = false
    var localError: NBDFailure?
    var peerDone = false
    var peerReceived = false
    var completed = false

    init(id: UInt64, range: Range<UInt64>, kind: PeerWrite.Kind, fua: Bool, noHole: Bool, fastZero: Bool, payload: ByteBuffer?,
         promise: EventLoopPromise<NBDOutcome>, replicated: Bool, startedAt: UInt64) {
        self.id = id
        self.range = range
        self.kind = kind
        self.fua = fua
        self.noHole = noHole
        self.fastZero = fastZero
        self.payload = payload
        self.promise = promise
        self.replicated = replicated
        self.startedAt = startedAt
        self.peerDone = !replicated
    }
}

/// A write received from the peer (application write or resync data), waiting for or doing its local I/O.
struct PeerApply {
    let id: UInt64
    let sequence: UInt64
    let range: Range<UInt64>
    /// The parts to write: all of `range` unless a conflict resolution skipped some.
    let segments: [Range<UInt64>]
    let kind: PeerWrite.Kind
    let fua: Bool
    let noHole: Bool
    let payload: ByteBuffer?
    let isResync: Bool
    let connection: PeerConnection
    /// Blocks this node pulled for its applications (no acknowledgement is due).
    var pullID: UInt64? = nil
}

/// A resync transfer on the SyncSource: read locally, (with csums-alg: digests compared), sent,
/// acknowledged by the target.
struct ResyncTransfer {
    let id: UInt64
    let range: Range<UInt64>
    var sent = false
    /// csums-alg: the data read, kept until the target's digests say which blocks differ.
    var data: ByteBuffer?
    var localDigests: [[UInt8]] = []
    /// Sub-ranges sent as syncData and not yet acknowledged.
    var awaitingAcks: [Range<UInt64>] = []
}

/// A range compared by digests during an online verify (VerifyS side).
struct VerifyRequest {
    let id: UInt64
    let range: Range<UInt64>
    var localDigests: [[UInt8]] = []
    var requested = false
}

/// An online verify in progress.
struct VerifyProgress {
    var source: Bool
    var algorithm: String
    var cursor = 0
    var totalBlocks: UInt64
    var doneBlocks: UInt64 = 0
    var outOfSyncBlocks: UInt64 = 0
    var inFlight: [UInt64: VerifyRequest] = [:]
    var startedAt: UInt64
    /// Differing ranges found, for the log (merged, first few hundred).
    var found: [Range<UInt64>] = []
}

/// A request waiting for blocks pulled from the SyncSource.
enum PullWaiter {
    case read(NBDRequest, NBD.Command, EventLoopPromise<NBDOutcome>)
    case write(WriteRequest)
}

/// Blocks requested from the SyncSource (`dataRequest`), and who waits for them.
struct Pull {
    let range: Range<UInt64>
    var waiters: [PullWaiter]
    /// Requests not answered yet, and whether one failed.
    var remaining: Int
    var failed = false
}

/// A `dataRequest` from the SyncTarget, read here after overlapping writes.
struct PullServe {
    let requestID: UInt64
    let range: Range<UInt64>
    let connection: PeerConnection
}

/// The peer asked for digests of a range (verify or csums resync): read after overlapping writes.
struct DigestJob {
    let id: UInt64
    let range: Range<UInt64>
    let algorithm: String
    let connection: PeerConnection
}

/// The connected peer and what is in flight with it.
struct PeerSession {
    let connection: PeerConnection
    var hello: PeerHello
    var report: PeerStateReport?
    var nextSequence: UInt64 = 1
    var writesBySequence: [UInt64: UInt64] = [:]
    var flushes: [UInt64: EventLoopPromise<Void>] = [:]
    var decision: SyncDecision?
    var peerBitmapDone = false
    var sync: ResyncProgress?
    var verify: VerifyProgress?
    /// The peer's operator paused resync (`pause-sync` there).
    var peerPausedSync = false
}

/// A running resync, on either side.
struct ResyncProgress {
    var source: Bool
    var full: Bool
    var started: Bool = false
    var cursor: Int = 0
    var inFlight: [UInt64: ResyncTransfer] = [:]
    var inFlightBytes = 0
    var totalBlocks: UInt64
    var doneBlocks: UInt64 = 0
    var startedAt: UInt64
    var finishedSending = false
    /// SyncSource: the rate controller, the bytes it allows now, and what was acknowledged since its last tick.
    var controller: ResyncController?
    var credit = 0
    var acknowledgedSinceTick = 0
    /// Resync data bytes this sync moved (sent on the source, received on the target).
    var movedBytes: UInt64 = 0
    /// csums-alg: blocks found identical and not sent.
    var sameBlocks: UInt64 = 0
    /// csums-alg in use on the source.
    var checksumAlgorithm: String?
    /// Progress samples (time, done blocks) for the current speed.
    var samples: [(at: UInt64, done: UInt64)] = []
    var pausedNanoseconds: UInt64 = 0
    var pausedSince: UInt64?
}

extension Resource {
    /// Runs `body` under the lock, then the collected effects outside it.
    @discardableResult
    func withState<T>(_ body: (inout Mutable, inout Effects) throws -> T) rethrows -> T {
        var effects: Effects = []
        let result = try mutable.withLockedValue { m in try body(&m, &effects) }
        for effect in effects { effect() }
        return result
    }

    /// Starts an operation the conflict tracker released.
    func startOperation(_ id: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        if m.localWrites[id] != nil {
            startLocalWrite(id, &m, &effects)
        } else if m.peerApplies[id] != nil {
            startPeerApply(id, &m, &effects)
        } else if m.peer?.sync?.inFlight[id] != nil {
            startResyncRead(id, &m, &effects)
        } else if m.peer?.verify?.inFlight[id] != nil {
            startVerifyRead(id, &m, &effects)
        } else if m.digestJobs[id] != nil {
            startDigestJob(id, &m, &effects)
        } else if m.pullServes[id] != nil {
            startPullServe(id, &m, &effects)
        }
    }
}
