import NIOCore
import PeerProtocol
import RepdCore

/// The replication logic of one resource on one node, as a deterministic state machine: events
/// in, actions out. It does no I/O and reads no clock; the daemon (`Resource`) and the simulator
/// drive it. Each concern keeps its state in a type of its own and its rules in a file of its own:
///
/// | file | concern |
/// |---|---|
/// | `WritePath.swift` | application writes: activity log, ordering, mirroring, completion per protocol, flushes, durability barriers |
/// | `ReadPath.swift` | application reads and block status |
/// | `PeerSession.swift` | connection, state exchange, the sync decision, the peer's writes |
/// | `SplitBrain.swift` | after-sb policies, rr-conflict, StandAlone |
/// | `ResyncSource.swift`, `ResyncTarget.swift` | the two ends of a resync |
/// | `Verify.swift` | online verify and the digests the peer asks for |
/// | `Pull.swift` | a SyncTarget reading blocks it lacks through the SyncSource |
/// | `Roles.swift` | operator commands: promotion, demotion, resync requests, connect |
/// | `Metadata.swift` | superblock transactions, bitmap pages, activity-log transactions |
/// | `DiskFailure.swift` | on-io-error, Diskless service through the peer, detach and attach, disk-timeout, no data |
///
/// State changes of roles and disks go through `NodeState.apply`; what must be durable first goes
/// through a superblock transaction (`commitSuperblock`), whose continuation runs once the driver
/// reports the write done.
public struct Engine: Sendable {
    /// Changed only by `repd adjust` (Adjust.swift), and only in the settings it may change.
    public internal(set) var configuration: EngineConfiguration
    /// Role, disk, connection and replication state, and what is known of the peer.
    public internal(set) var state = NodeState()
    /// Superblock, dirty bitmap, activity log and their persistence.
    public internal(set) var metadata: MetadataKeeper
    /// Orders overlapping writes, resync transfers and reads that must see them.
    var tracker = WriteConflictTracker()
    /// What each tracked operation is.
    var operations: [UInt64: TrackedOperation] = [:]
    /// What each outstanding I/O token is for.
    var pending: [IOToken: PendingIO] = [:]
    public internal(set) var writes = WritePath()
    /// The connected peer and everything in flight with it.
    public internal(set) var session: PeerSession?
    public internal(set) var pulls = PullTable()
    /// Settings and state that outlive a connection.
    public internal(set) var link = LinkMemory()
    public internal(set) var counters = Counters()
    /// A role change in progress (its superblock is being written).
    var roleChange: RoleChange?
    /// The size applications see: the local usable size, or the peer's if smaller.
    public internal(set) var exportSize: UInt64
    public internal(set) var shuttingDown = false
    /// Client requests accepted and not answered yet.
    public internal(set) var inFlight = 0
    /// Monotonic time of the last tick (nanoseconds) and wall time (seconds).
    public internal(set) var now: UInt64 = 0
    public internal(set) var unixTime: UInt64 = 0
    /// A disk's metadata is in use (false once the disk is detached, until an attach).
    public internal(set) var diskAttached = true
    /// Why the node is Diskless, if its disk failed or was detached.
    public internal(set) var diskFailure: DiskFailure?
    /// An attach while connected: the disk state the metadata shows, until the resync is decided.
    var attachingDisk: DiskState?
    /// This node attached a disk and waits for the peer's answering state to decide.
    var awaitingAttachDecision = false
    /// A Diskless Primary: the generation of the data its applications see (DRBD's "effective
    /// data UUID", role bit masked). It connects only to a peer with that data.
    public internal(set) var effectiveData: UInt64?
    /// With disk-timeout: when each local I/O was issued.
    var issuedAt: [IOToken: UInt64] = [:]
    /// Reads served by the peer for lack of a disk, and their requests.
    var remoteReads: [UInt64: RemoteRead] = [:]
    var remoteRequests: [UInt64: (read: UInt64, range: Range<UInt64>)] = [:]
    /// Requests held without data (on-no-data-accessible suspend-io).
    var suspended: [SuspendedRequest] = []
    /// How many requests are held without data (for status).
    public var suspendedCount: Int { suspended.count }
    /// Fencing in progress, or frozen after the fence-peer handler failed.
    public internal(set) var fence: FenceRun?
    /// `repd suspend-io`: new application requests wait until `repd resume-io`.
    public internal(set) var userSuspended = false
    /// The `repd resize` whose grown metadata is being written.
    var resizeCommand: CommandID?
    var random: SplitMix64
    var nextToken: IOToken = 1
    var output: [Action] = []

    /// - Parameters:
    ///   - activityLogReplay: the activity-log ring as read from the metadata.
    ///   - seed: the source of new generation identifiers.
    public init(configuration: EngineConfiguration, superblock: Superblock, bitmap: DirtyBitmap,
                activityLogReplay: ActivityLog.Replay, seed: UInt64) {
        self.configuration = configuration
        self.metadata = MetadataKeeper(superblock: superblock, bitmap: bitmap,
                                       activityLog: ActivityLog(slotCount: max(1, configuration.activityLogExtents),
                                                                nextTransactionNumber: activityLogReplay.lastTransactionNumber + 1))
        self.random = SplitMix64(seed: seed)
        self.exportSize = configuration.usableSize
        state.allowTwoPrimaries = configuration.allowTwoPrimaries
        state.connection = configuration.peerNode == nil ? .standAlone : .connecting
        let flags = superblock.flags
        let disk: DiskState = !flags.contains(.consistent) ? .inconsistent : flags.contains(.wasUpToDate) ? .consistent : .outdated
        _ = try? state.apply(.attach(disk))
        if !flags.contains(.activityLogClean) {
            // After a stop without `repd down`, every extent the activity log holds may differ from
            // the peer: its blocks are out of sync.
            let recovered = activityLogReplay.extents.filter { UInt64($0) * Geometry.activityLogExtentSize < configuration.usableSize }
            for extent in recovered { metadata.markOutOfSync(ActivityLog.byteRange(ofExtent: extent)) }
            metadata.recoveredExtents = recovered.count
        }
        metadata.damagedActivityLogBlocks = activityLogReplay.damagedBlocks
        if flags.contains(.fullSyncNeeded) { metadata.markAllOutOfSync() }
    }

    /// A node that starts without its disk: the disk failed before (and was not attached again
    /// since), or could not be opened. It serves through its peer until `repd attach`.
    public init(configuration: EngineConfiguration, disklessBecause failure: DiskFailure?, seed: UInt64) {
        let layout = MetadataLayout(metadataOffset: 0, metadataSize: 0, usableSize: configuration.usableSize,
                                    activityLogOffset: 0, activityLogSize: 0, bitmapOffset: 0, bitmapSize: 0)
        var superblock = Superblock(layout: layout, resourceName: configuration.resource, nodeName: configuration.node, deviceUUID: 0, createdAt: 0)
        superblock.generation = GenerationIdentifiers(current: 0)
        self.init(configuration: configuration, superblock: superblock,
                  bitmap: DirtyBitmap(blockCount: Int(configuration.usableSize / Geometry.blockSize)),
                  activityLogReplay: ActivityLog.Replay(slots: [], lastTransactionNumber: 0, damagedBlocks: 0), seed: seed)
        metadata.recoveredExtents = 0
        metadata.clearBitmap()
        _ = try? state.apply(.fail)
        diskAttached = false
        diskFailure = failure
    }

    /// Handles one event and returns what the driver must do, in order.
    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .clientRead(let id, let offset, let length, let kind):
            clientRead(id, offset: offset, length: length, kind: kind)
        case .clientWrite(let id, let write):
            clientWrite(id, write)
        case .clientFlush(let id):
            clientFlush(id)
        case .readDone(let token, let result):
            readDone(token, result)
        case .writeDone(let token, let failure):
            writeDone(token, failure)
        case .syncDone(let token, let failure):
            syncDone(token, failure)
        case .persisted(let token, let failure):
            persisted(token, failure)
        case .peerConnected(let connection, let peerNode, let localResolves):
            peerConnected(connection, peerNode: peerNode, localResolves: localResolves)
        case .peerLost(let connection, let reason):
            peerLost(connection, reason: reason)
        case .peerMessage(let connection, let message):
            guard session?.connection == connection else { break }
            if session!.deferredMessages != nil && !(session!.pendingSyncStart?.source == true && message.answersOurRequests) {
                // A SyncSource waiting for its before-resync-source handler still takes the
                // answers to its own writes and pings: its applications must not stall for it.
                session!.deferredMessages!.append(message)
            } else {
                peerMessage(message)
            }
        case .peerSent(let connection, let sequence):
            guard session?.connection == connection else { break }
            peerSentWrite(sequence: sequence)
        case .peerRefused(let reason):
            link.message = "connection to the peer refused: \(reason)"
        case .tick(let now, let unixTime):
            tick(now: now, unixTime: unixTime)
        case .command(let id, let command):
            operatorCommand(id, command)
        case .handlerFinished(let token, let result):
            handlerFinished(token, result)
        case .beginShutdown:
            shuttingDown = true
            let held = suspended
            suspended.removeAll()
            for request in held {
                switch request {
                case .read(let id, _, _, _), .write(let id, _), .flush(let id):
                    completeWrite(id, .failed(.shutdown, "the resource is going down"))
                }
            }
        case .attachDisk(let id, let disk):
            attachDisk(id, disk)
        case .adjust(let id, let settings):
            adjust(id, settings)
        case .resize(let id, let layout, let assumeClean):
            resize(id, layout: layout, assumeClean: assumeClean)
        }
        defer { output.removeAll(keepingCapacity: true) }
        return output
    }

    /// What the driver does once, before serving: records that the resource is up (the bits the
    /// activity log recovered, a fresh activity-log table, the flags without activity-log-clean).
    /// The driver waits for this write before it serves anything.
    public mutating func start(now: UInt64, unixTime: UInt64) -> [Action] {
        self.now = now
        self.unixTime = unixTime
        if !diskAttached {
            log(.warning, "no disk: " + (diskFailure.map { "it failed (\($0.summary)); `repd attach \(configuration.resource)` takes it, or a new one, back" } ?? "not attached")
                + "; reads and writes go through \(peerName) once it is connected")
            if configuration.becomePrimaryOnStart { log(.warning, "become-primary-on is ignored without a disk") }
            defer { output.removeAll(keepingCapacity: true) }
            return output
        }
        if metadata.recoveredExtents > 0 {
            log(.warning, "unclean stop: the activity log holds \(metadata.recoveredExtents) extents of 4 MiB; marked out of sync (\(metadata.bitmap.outOfSyncCount) blocks out of sync in all)")
        }
        if metadata.damagedActivityLogBlocks > 0 {
            log(.warning, "\(metadata.damagedActivityLogBlocks) damaged activity-log blocks were ignored")
        }
        var sb = metadata.superblock
        if sb.flags.contains(.primaryIndicator) {
            sb.flags.insert(.crashedPrimary)
            log(.warning, "the metadata says this node was Primary when it last stopped without `repd down`: marked crashed-primary")
        }
        sb.flags.remove(.activityLogClean)
        metadata.superblock = sb
        var write = metadata.takeDirtyPages(sync: true)
        write.activityLog = metadata.activityLog.fullTableTransactions().map { (transaction: $0.transaction, ringSlot: $0.ringSlot) }
        counters.activityLogWrites += UInt64(write.activityLog.count)
        write.superblock = metadata.nextSuperblock()
        emitPersist(write, then: .startup)
        if configuration.becomePrimaryOnStart {
            if configuration.peerNode == nil {
                becomePrimaryOnStart(reason: "become-primary-on names this node")
            } else {
                // As DRBD: wait for the peer first, so that two nodes restarting together do not
                // each promote alone and create a split brain.
                link.pendingBecomePrimary = true
                link.becomePrimaryDeadline = configuration.waitForConnectionSeconds > 0
                    ? now + UInt64(configuration.waitForConnectionSeconds) * 1_000_000_000 : nil
                let fallback = configuration.waitForConnectionSeconds > 0 ? " (or alone after wfc-timeout \(configuration.waitForConnectionSeconds) s)" : ""
                log(.info, "become-primary-on: will become Primary once connected and in sync\(fallback)")
            }
        }
        defer { output.removeAll(keepingCapacity: true) }
        return output
    }

    /// What the driver writes last, once every client request has drained and the link is closed:
    /// the bitmap, made durable, then the superblock saying the activity log is not needed.
    public mutating func stop() -> MetadataWrite {
        var write = metadata.takeDirtyPages(sync: true)
        var sb = metadata.superblock
        if inFlight == 0 {
            sb.flags.remove(.primaryIndicator)
            sb.flags.insert(.activityLogClean)
        }
        metadata.superblock = sb
        write.superblock = metadata.nextSuperblock()
        return write
    }

    // MARK: time

    mutating func tick(now: UInt64, unixTime: UInt64) {
        self.now = max(self.now, now)
        self.unixTime = unixTime
        if let deadline = link.becomePrimaryDeadline, self.now >= deadline, link.pendingBecomePrimary {
            link.pendingBecomePrimary = false
            link.becomePrimaryDeadline = nil
            becomePrimaryOnStart(reason: "wfc-timeout expired without the peer")
        }
        if self.now >= metadata.lastLazyFlush + configuration.bitmapFlushInterval {
            metadata.lastLazyFlush = self.now
            flushBitmapLazily()
        }
        checkDiskTimeout()
        retireIdleExtents()
        guard session != nil else { return }
        checkAcknowledgementTimeout()
        // Every tick while resync data waits for durability; and once the writes pause (a tick
        // without acknowledgements): one sync per burst, and a Secondary stopped after the burst
        // leaves nothing to resync.
        let idle = !session!.acknowledgedSinceTick
        session!.acknowledgedSinceTick = false
        let resyncWaits = (session!.resync?.awaitingDurabilityBytes ?? 0) > 0 || !session!.inSyncWhenDurable.isEmpty
        sendBarrierIfDue(force: idle || resyncWaits)
        resyncTick()
    }

    // MARK: output helpers

    mutating func emit(_ action: Action) {
        if configuration.diskTimeoutNanoseconds > 0 {
            switch action {
            case .readLocal(let token, _, _), .writeLocal(let token, _), .syncLocal(let token), .persist(let token, _): issued(token)
            default: break
            }
        }
        output.append(action)
    }

    mutating func log(_ level: LogLevel, _ message: String) {
        output.append(.log(level, message))
    }

    mutating func newToken() -> IOToken {
        defer { nextToken += 1 }
        return nextToken
    }

    /// Sends on the current connection, if any.
    mutating func send(_ message: PeerMessage, reportSent: UInt64? = nil) {
        guard let connection = session?.connection else { return }
        output.append(.send(connection, message, reportSent: reportSent))
    }

    mutating func reply(_ id: CommandID, _ ok: Bool, _ message: String) {
        output.append(.reply(id, ok: ok, message: "\(configuration.resource): \(message)"))
    }

    /// A new random generation identifier.
    mutating func newUUID() -> UInt64 { random.next() }

    var peerName: String { configuration.peerNode ?? "peer" }

    /// Starts a configured handler in the background (nothing happens if it is not configured).
    @discardableResult
    mutating func runHandler(_ name: String, _ extra: [String: String] = [:], purpose: HandlerPurpose = .informational) -> IOToken? {
        guard configuration.handlers.contains(name) else { return nil }
        var environment = configuration.handlerEnvironment
        environment["DRBD_RESOURCE"] = configuration.resource
        environment["DRBD_PEER"] = peerName
        environment["REPD_RESOURCE"] = configuration.resource
        environment["REPD_NODE"] = configuration.node
        environment["REPD_PEER"] = peerName
        environment["REPD_HANDLER"] = name
        for (key, value) in extra { environment[key] = value }
        let token = newToken()
        pending[token] = .handler(name: name, purpose: purpose)
        emit(.runHandler(token, name: name, environment: environment))
        return token
    }

    mutating func handlerFinished(_ token: IOToken, _ result: HandlerResult) {
        guard case .handler(let name, let purpose)? = pending.removeValue(forKey: token) else { return }
        switch result {
        case .exited(0): log(.info, "the \(name) handler finished")
        case .exited(let status): log(.warning, "the \(name) handler exited with status \(status)")
        case .failed(let reason): log(.warning, "the \(name) handler: \(reason)")
        }
        switch purpose {
        case .informational: break
        case .fencePeer: fencePeerFinished(result)
        case .beforeResync(let connection): beforeResyncFinished(connection, name: name, result)
        }
    }
}

/// What a handler run is for: informational ones only log their result.
enum HandlerPurpose: Sendable, Hashable {
    case informational
    /// `fence-peer`: its exit code decides (Fencing.swift).
    case fencePeer
    /// `before-resync-target` / `before-resync-source`: the resync waits for it; non-zero stops it.
    case beforeResync(ConnectionID)
}

/// What an outstanding I/O token stands for.
enum PendingIO: Sendable {
    /// A client read, block status or prefetch served from the local disk.
    case clientRead(ClientRequestID, ClientReadKind, Range<UInt64>)
    /// The local I/O of a tracked operation (its id in the tracker).
    case tracked(UInt64)
    /// The local sync of a client flush.
    case clientFlushSync(UInt64)
    /// The local sync the peer's flush (barrier) asked for.
    case peerFlushSync(sequence: UInt64, connection: ConnectionID)
    /// Making the data durable before the role changes to Secondary.
    case demotionSync
    /// Making durable, once the peer is lost, the writes it sent that no barrier confirmed yet.
    case peerLossSync
    case metadata(AfterPersist, MetadataWrite)
    case handler(name: String, purpose: HandlerPurpose)
}

/// Operations the conflict tracker orders, by tracker id.
enum TrackedOperation: Sendable {
    case localWrite(LocalWriteOperation)
    case peerApply(PeerApply)
    case resyncRead(range: Range<UInt64>)
    case verifyRead(range: Range<UInt64>)
    case digestJob(range: Range<UInt64>, algorithm: String)
    case pullServe(requestID: UInt64, range: Range<UInt64>)
}

/// What the engine remembers across connections.
public struct LinkMemory: Sendable {
    /// Why the last connection attempt was refused or the link dropped, for status.
    public var message: String?
    /// `repd connect --discard-my-data`: drop our changes if the next connection finds a split brain.
    public var discardMyData = false
    /// Why the node is StandAlone after a split brain (or rr-conflict), until `repd connect`.
    public var splitBrain: String?
    /// Whether that StandAlone state is a split brain (not an rr-conflict).
    public var standAloneAfterSplitBrain = false
    /// The operator made the node StandAlone (`disconnect`) or a split brain did.
    public var standAlone = false
    /// The peer's state as last reported (for `connect --dry-run`).
    public var lastPeerReport: PeerStateReport?
    /// `repd pause-sync` on this node.
    public var userPausedSync = false
    /// The last resync or verify that ended, for status.
    public var lastSyncSummary: String?
    /// The last online verify this node ran: KiB found out of sync, when (Unix seconds).
    public var lastVerify: (outOfSyncKiB: UInt64, at: UInt64)?
    /// `become-primary-on`: promote once connected and in sync (or at the deadline).
    public var pendingBecomePrimary = false
    public var becomePrimaryDeadline: UInt64?
    /// This node fenced (outdated) the peer: `unfence-peer` runs once the peer is in sync again.
    public var fencedPeer = false
    /// Why the last resync did not start (a before-resync handler failed); cleared when one starts.
    public var resyncBlocked: String?
}

/// Figures for status.
public struct Counters: Sendable {
    public var readBytes: UInt64 = 0
    public var writtenBytes: UInt64 = 0
    public var sentBytes: UInt64 = 0
    public var receivedBytes: UInt64 = 0
    public var bitmapWrites: UInt64 = 0
    public var activityLogWrites: UInt64 = 0
    public var conflicts: UInt64 = 0
    /// Application requests since the resync controller's last tick (for c-min-rate).
    public var applicationRequests: UInt64 = 0
    public var applicationRequestsAtLastTick: UInt64 = 0
}

/// A small, fast, seedable generator (Steele, Lea, Flood 2014): the engine's only randomness.
public struct SplitMix64: Sendable, RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Renders a number with one decimal.
func oneDecimal(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

func hex(_ value: UInt64) -> String { GenerationIdentifiers.text(value) }

/// Generation identifiers in one line: current/bitmap/history.
public func generationText(_ g: GenerationIdentifiers) -> String {
    ([g.current, g.bitmap] + g.history).map { GenerationIdentifiers.text($0) }.joined(separator: ":")
}

extension PeerMessage {
    /// Answers to what this node sent (acknowledgements, pings): independent of a resync starting.
    var answersOurRequests: Bool {
        switch self {
        case .writeAck, .receiveAck, .flushAck, .ping, .pingAck, .roleReply: return true
        default: return false
        }
    }
}
