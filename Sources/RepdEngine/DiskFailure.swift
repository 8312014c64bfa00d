import NIOCore
import PeerProtocol
import RepdCore

/// Why a node has no disk: for status, and for the record that keeps a failed disk out of use
/// until the operator attaches it again.
public struct DiskFailure: Sendable, Hashable, Codable {
    public enum Cause: String, Sendable, Hashable, Codable {
        case ioError = "I/O error"
        case timeout = "disk-timeout"
        case operatorDetach = "detached by the operator"
        case attachInterrupted = "attach not completed"
    }
    public var cause: Cause
    /// What failed: "read", "write", "metadata write", "sync", ...
    public var operation: String?
    /// Byte offset of the failed request on the disk, when it had one.
    public var offset: UInt64?
    /// Unix seconds.
    public var at: UInt64
    /// The error as the system reported it.
    public var detail: String
    /// The current generation of the data on the disk when it went, if it was Consistent or
    /// UpToDate: while the peer does not have that generation, the disk holds the newest data.
    public var dataGeneration: UInt64?

    public init(cause: Cause, operation: String? = nil, offset: UInt64? = nil, at: UInt64, detail: String, dataGeneration: UInt64? = nil) {
        self.cause = cause
        self.operation = operation
        self.offset = offset
        self.at = at
        self.detail = detail
        self.dataGeneration = dataGeneration
    }

    /// A failure keeps the disk out of use (not at `up`, not after a restart) until `repd attach`.
    public var keepsDiskOut: Bool { cause == .ioError || cause == .timeout }

    /// "I/O error at 1048576 (write): Input/output error", "disk-timeout (write at 0): ...".
    public var summary: String {
        var text = cause.rawValue
        if let offset { text += " at \(offset)" }
        if let operation { text += " (\(operation))" }
        if !detail.isEmpty { text += ": \(detail)" }
        return text
    }
}

/// A read served by the peer for a node without a usable disk: the parts as they come back.
struct RemoteRead: Sendable {
    let client: ClientRequestID
    let range: Range<UInt64>
    var parts: [UInt64: ByteBuffer] = [:]
    var remaining: Int
    var failed = false
}

/// A request that no disk can serve now, held (`on-no-data-accessible suspend-io`) until data is
/// reachable again or `resume-io`.
enum SuspendedRequest: Sendable {
    case read(ClientRequestID, offset: UInt64, length: UInt32, kind: ClientReadKind)
    case write(ClientRequestID, ClientWrite)
    case flush(ClientRequestID)
}

/// The local disk failing or going away, serving without it, and taking a disk again:
/// DRBD's `on-io-error`, Diskless service through the peer, `detach`/`attach`, `disk-timeout` and
/// `on-no-data-accessible`.
///
/// Once the disk is dropped the engine issues no I/O to it, and results of I/O that was still out
/// there are ignored: each such request was settled at the detach (writes by the peer's copy,
/// reads again through the peer). Writes from now on go to the peer only and complete when its
/// disk has them; the peer marks them out of sync for this node's disk and covers them with its
/// activity log. Reads go to the peer. An attach later negotiates a resync like a new connection.
extension Engine {
    // MARK: the policy

    /// Whether a local failure drops the disk rather than going to the application: the disk is
    /// already gone, or on-io-error says detach (for errors of the disk itself).
    func failureDetaches(_ failure: IOFailure) -> Bool {
        if !state.hasDisk { return true }
        guard configuration.onIOError != .passOn else { return false }
        return failure.kind == .io || failure.kind == .noSpace
    }

    /// A local data or metadata I/O failed; with `detach` (or `call-local-io-error`) the disk goes.
    /// Metadata failures always detach (as DRBD's), whatever the policy.
    mutating func localIOFailed(_ failure: IOFailure, operation: String, offset: UInt64?, metadata isMetadata: Bool = false) {
        guard state.hasDisk || diskAttached, failure.kind != .shutdown else { return }
        guard isMetadata || failureDetaches(failure) else { return }
        detachDisk(DiskFailure(cause: .ioError, operation: operation, offset: offset, at: unixTime, detail: failure.message))
    }

    // MARK: detaching

    /// Drops the disk: the node is Diskless from here on, for the reason given.
    mutating func detachDisk(_ failure: DiskFailure) {
        guard diskAttached else { return }
        let peerServes = state.connection == .connected && state.peerDisk == .upToDate
        if failure.cause == .operatorDetach {
            log(.info, "detaching the disk (repd detach): Diskless from now on" + (peerServes ? "; reads and writes go to \(peerName)" : ""))
        } else if failure.cause == .attachInterrupted {
            log(.warning, "the disk is detached again: \(failure.detail)")
        } else {
            log(.error, "\(failure.summary): the disk is detached (on-io-error \(configuration.onIOError.rawValue)); Diskless from now on"
                + (peerServes ? ", reads and writes go to \(peerName)" : ", and \(peerName) is not there to serve: requests without data fail")
                + "; `repd attach \(configuration.resource)` takes the disk (or a new one) back")
            if configuration.onIOError == .callLocalIOError {
                runHandler("local-io-error", ["REPD_DISK_FAILURE": failure.summary])
            }
        }
        // What the disk says when it is read again (if it can still be written): its bitmap, and
        // a superblock whose activity log is not clean (it covers the writes that were in flight).
        var farewell = metadata.takeDirtyPages(sync: true)
        var superblock = metadata.superblock
        superblock.flags.remove(.activityLogClean)
        if failure.keepsDiskOut { superblock.flags.insert(.diskFailed) }
        if peerServes {
            // The data moves on without this disk: it is Outdated from now on, so that a restart
            // with it cannot be promoted over the peer's newer data (found by the simulator,
            // seed 1599: a detached Primary restarted on its old disk and served stale blocks).
            superblock.flags.remove(.wasUpToDate)
        }
        metadata.superblock = superblock
        farewell.superblock = metadata.nextSuperblock()
        if state.role == .primary {
            // What the applications see from now on: this disk's data, or the peer's if that is what they saw.
            if peerServes, let report = session?.report {
                effectiveData = report.generation.currentIgnoringRole
            } else if state.disk == .upToDate {
                effectiveData = metadata.superblock.generation.currentIgnoringRole
            }
        }
        var failure = failure
        if state.disk >= .consistent {
            failure.dataGeneration = metadata.superblock.generation.currentIgnoringRole
        }
        _ = try? state.apply(.fail)
        diskAttached = false
        diskFailure = failure
        awaitingAttachDecision = false
        issuedAt.removeAll()
        emit(.diskDetached(failure, farewell: farewell))

        // The activity log, the ranges of failed writes and a pending generation belong to that disk.
        metadata.activityLogEpoch &+= 1
        metadata.activityLog = ActivityLog(slotCount: metadata.activityLog.slotCount,
                                           nextTransactionNumber: metadata.activityLog.nextTransactionNumber)
        metadata.activityLogInFlight = false
        let waitingForLog = metadata.activityLogWaiting
        metadata.activityLogWaiting.removeAll()
        let appliesForLog = metadata.activityLogWaitingApplies
        metadata.activityLogWaitingApplies.removeAll()
        writes.staleRanges.removeAll()
        writes.generationPending = false
        let gated = writes.gated
        writes.gated.removeAll()
        let gatedApplies = writes.gatedApplies
        writes.gatedApplies.removeAll()
        for (id, operation) in operations {
            if case .localWrite(var op) = operation, op.activityLogEpoch != nil {
                op.activityLogEpoch = nil
                operations[id] = .localWrite(op)
            }
        }

        // The peer learns first: it stops a resync, and marks from now on what this disk misses.
        sendState()
        endSyncWithoutLocalDisk()
        abandonLocalIO()
        for request in gated + waitingForLog { admitLocalWrite(request) }
        for id in gatedApplies + appliesForLog { startPeerApply(id) }
        reroutePulls()
        roleChangeProgress()
        updateDetachedDataAhead()
        if !state.servedByPeer { noDataAccessible() }
    }

    /// Every local I/O still out is settled now, as failed; its late result is ignored.
    mutating func abandonLocalIO() {
        let failure = IOFailure(.io, "the disk was detached")
        for token in pending.keys.sorted() {
            guard let io = pending[token] else { continue }
            switch io {
            case .handler:
                continue
            case .clientRead(let id, let kind, let range):
                pending[token] = nil
                // Served again, through the peer if it can.
                inFlight -= 1
                clientRead(id, offset: range.lowerBound, length: UInt32(range.count), kind: kind)
            case .tracked(let id):
                pending[token] = nil
                switch operations[id] {
                case .localWrite?, .peerApply?: writeFinished(io, failure)
                case .resyncRead?, .verifyRead?, .digestJob?, .pullServe?: readFinished(io, .failure(failure))
                case nil: break
                }
            case .clientFlushSync, .peerFlushSync, .demotionSync, .peerLossSync:
                pending[token] = nil
                syncFinished(io, failure)
            case .metadata(let then, _):
                pending[token] = nil
                switch then {
                case .roleChange: roleChangePersisted(nil)
                case .syncTargetReady(let connection): syncTargetReady(connection, nil)
                case .resized(let id): resizePersisted(id, IOFailure(.io, "the disk was detached"))
                case .nothing, .startup, .lazyBitmap, .activityLog, .generationGate: break
                }
            }
        }
    }

    /// A resync or verify needs both disks: when one of them goes, it ends (the bitmaps keep what
    /// is still to do).
    mutating func endSyncWithoutLocalDisk() {
        guard let connection = session?.connection else { return }
        if let sync = session!.resync {
            log(.warning, "resync as \(sync.source ? "SyncSource" : "SyncTarget") stopped: \(state.hasDisk ? "the peer" : "this node") has no disk now")
            session!.resync = nil
        }
        if let pending = session!.pendingSyncStart {
            log(.warning, "the resync \(pending.source ? "from" : "to") this node that waited for its before-resync handler will not start: \(state.hasDisk ? "the peer" : "this node") has no disk now")
            session!.pendingSyncStart = nil
        }
        // What waited for the resync to start is taken now, in order, by a node without a resync
        // (the peer's writes and acknowledgements must not be lost with it).
        let deferred = session!.deferredMessages ?? []
        session!.deferredMessages = nil
        defer {
            for message in deferred where session?.connection == connection { peerMessage(message) }
        }
        if session!.verify != nil {
            log(.warning, "online verify stopped: a disk went away")
            session!.verify = nil
        }
        state.replication = .established
        for op in tracker.awaitingPeer where op.origin == .resync {
            // Resync and verify transfers: nobody waits for the peer's answer any more.
            tracker.markPeerDone(op.id)
            if operations[op.id] == nil { releaseAfterLocalDone(op.id) }
        }
    }

    /// A SyncTarget's pulls were to land on its disk: the requests waiting for them are served
    /// through the peer instead.
    mutating func reroutePulls() {
        let waiting = pulls.pulls
        pulls.pulls.removeAll()
        pulls.requests.removeAll()
        for (_, pull) in waiting.sorted(by: { $0.key < $1.key }) {
            for waiter in pull.waiters + pull.deferred {
                switch waiter {
                case .read(let client, let kind, let range):
                    inFlight -= 1
                    clientRead(client, offset: range.lowerBound, length: UInt32(range.count), kind: kind)
                case .write(let write):
                    startAdmittedWrite(write)
                }
            }
        }
    }

    /// `repd detach`.
    mutating func operatorDetach(_ id: CommandID) {
        guard diskAttached else { return reply(id, true, "already Diskless") }
        if roleChange != nil { return reply(id, false, "a role change is in progress; try again when it has finished") }
        var next = state
        do {
            _ = try next.apply(.detach)
        } catch {
            return reply(id, false, "\(error)")
        }
        if state.disk == .upToDate && state.connection == .connected && state.peerHasDisk && state.peerDisk != .upToDate {
            return reply(id, false, "refusing to detach: this is the only UpToDate disk (the peer is \(state.peerDisk.rawValue)); wait for its resync to finish")
        }
        detachDisk(DiskFailure(cause: .operatorDetach, at: unixTime, detail: ""))
        reply(id, true, "detached: Diskless" + (state.servedByPeer ? "; reads and writes go to \(peerName)" : ""))
    }

    // MARK: attaching

    /// `repd attach`: the driver opened the disk; take it, or refuse it (the driver closes it).
    mutating func attachDisk(_ id: CommandID, _ disk: NewDisk) {
        guard !diskAttached else {
            return reply(id, false, "a disk is attached (disk \(state.disk.rawValue)); `repd detach \(configuration.resource)` first")
        }
        guard disk.usableSize >= configuration.usableSize else {
            return reply(id, false, "the disk has \(disk.usableSize) usable bytes; the resource needs \(configuration.usableSize)")
        }
        // A disconnected Diskless Primary takes back only the data it lost (DRBD's rule).
        let ownDataBack = state.role == .primary && !state.servedByPeer && effectiveData != nil
            && disk.superblock.generation.currentIgnoringRole == effectiveData && disk.superblock.flags.contains(.consistent)
        if state.role == .primary && !state.servedByPeer && !ownDataBack {
            return reply(id, false, "a Diskless Primary without its peer can only attach the data it lost (generation \(effectiveData.map(hex) ?? "none")); "
                + "this disk has \(hex(disk.superblock.generation.current)): connect the peer, or make this node Secondary")
        }
        if roleChange != nil { return reply(id, false, "a role change is in progress; try again when it has finished") }
        var keeper = MetadataKeeper(superblock: disk.superblock, bitmap: disk.bitmap,
                                    activityLog: ActivityLog(slotCount: metadata.activityLog.slotCount,
                                                             nextTransactionNumber: disk.activityLogReplay.lastTransactionNumber + 1))
        keeper.activityLogEpoch = metadata.activityLogEpoch &+ 1
        metadata = keeper
        let flags = disk.superblock.flags
        if !flags.contains(.activityLogClean) {
            let recovered = disk.activityLogReplay.extents.filter { UInt64($0) * Geometry.activityLogExtentSize < configuration.usableSize }
            for extent in recovered { metadata.markOutOfSync(ActivityLog.byteRange(ofExtent: extent)) }
            if !recovered.isEmpty {
                log(.info, "the disk's activity log holds \(recovered.count) extents (writes in flight when it was last used): marked out of sync")
            }
        }
        if disk.fullSync || flags.contains(.fullSyncNeeded) {
            metadata.markAllOutOfSync()
            log(.warning, "the disk's bitmap could not be kept up to date when it was last used: every block is resynced")
        }
        let found: DiskState = !flags.contains(.consistent) ? .inconsistent : flags.contains(.wasUpToDate) ? .consistent : .outdated
        // Attached without the peer, a disk that was detached is Outdated, not Consistent: the peer
        // (or this node, writing through it while Diskless) may have written since, and a Consistent
        // disk alone may be promoted. The peer's generations decide when it connects; `primary
        // --force` takes this data as it is (found by the simulator, seed 6528: a node whose disk
        // had failed attached it again alone, was promoted, and read its own older data).
        let connected = session?.report != nil
        let alone = !connected && !ownDataBack && found == .consistent && configuration.peerNode != nil
        diskAttached = true
        diskFailure = nil
        state.detachedDataAhead = false
        // Recorded as in use: a fresh activity-log table, no failure, not clean.
        var superblock = metadata.superblock
        superblock.flags.remove(.diskFailed)
        superblock.flags.remove(.activityLogClean)
        superblock.flags.remove(.fullSyncNeeded)
        if alone { superblock.flags.remove(.wasUpToDate) }
        metadata.superblock = superblock
        var write = metadata.takeDirtyPages(sync: true)
        write.activityLog = metadata.activityLog.fullTableTransactions().map { (transaction: $0.transaction, ringSlot: $0.ringSlot) }
        counters.activityLogWrites += UInt64(write.activityLog.count)
        write.superblock = metadata.nextSuperblock()
        emitPersist(write, then: .nothing)
        log(.info, "attached a disk with generation \(generationText(metadata.superblock.generation)) (found \(found.rawValue), \(metadata.bitmap.outOfSyncCount) blocks marked)")
        if connected {
            // As a new connection would: the resync is decided from both sides' generations. The
            // disk takes no I/O until then; the peer answers with its state and decides too.
            attachingDisk = found
            _ = try? state.apply(.attach(.negotiating))
            session!.decision = nil
            awaitingAttachDecision = true
            sendState()
            reply(id, true, "attached; negotiating the resync with \(peerName)")
        } else if ownDataBack {
            _ = try? state.apply(.attach(.upToDate))
            effectiveData = nil
            reply(id, true, "attached: the data this Primary lost, UpToDate again")
        } else if alone {
            _ = try? state.apply(.attach(.outdated))
            reply(id, true, "attached: disk Outdated (\(peerName) may have written since the disk was detached); "
                + "the resync is decided when \(peerName) connects; `repd primary --force \(configuration.resource)` uses this data as it is")
        } else {
            _ = try? state.apply(.attach(found))
            reply(id, true, "attached: disk \(found.rawValue)" + (configuration.peerNode == nil ? "" : "; the resync is decided when \(peerName) connects"))
        }
        resumeSuspended()
    }

    /// Whether this node's detached disk holds data the connected peer lacks (its last
    /// generation is not among the peer's): then the peer does not serve this node's applications.
    mutating func updateDetachedDataAhead() {
        guard !diskAttached, let generation = diskFailure?.dataGeneration, let report = session?.report else {
            state.detachedDataAhead = false
            return
        }
        let ahead = !report.generation.includes(generation)
        if ahead && !state.detachedDataAhead {
            log(.warning, "this node's detached disk holds data of generation \(hex(generation)), which \(peerName) does not have "
                + "(it has \(hex(report.generation.current))): \(peerName) does not serve this node; `repd attach \(configuration.resource)` "
                + "resyncs it, `repd primary --force \(configuration.resource)` goes on with \(peerName)'s older data")
        }
        state.detachedDataAhead = ahead
    }

    /// The disk an attach ends in while it is negotiating (what the peer and the decision see).
    var negotiatedDisk: DiskState { state.disk == .negotiating ? (attachingDisk ?? .outdated) : state.disk }

    /// The peer attached a disk (its report says Negotiating): answer with our state and decide,
    /// as on a new connection.
    mutating func peerAttachedDisk(_ report: PeerStateReport) {
        guard session != nil else { return }
        log(.info, "\(peerName) attached a disk: deciding the resync")
        session!.decision = nil
        send(.state(stateReport(negotiationReply: true)))
        decideSync(attacher: .peer)
    }

    /// The peer's answer to our attach arrived: decide.
    mutating func attachAnswered() {
        awaitingAttachDecision = false
        effectiveData = nil
        if state.disk == .negotiating, let found = attachingDisk {
            _ = try? state.apply(.attach(found))
        }
        attachingDisk = nil
        decideSync(attacher: .local)
    }

    // MARK: serving without a disk

    /// A read this node has no disk for: from the peer, or it waits or fails without data.
    mutating func readThroughPeer(_ id: ClientRequestID, kind: ClientReadKind, range: Range<UInt64>) {
        switch kind {
        case .cache:
            inFlight -= 1
            return emit(.complete(id, .done))
        case .blockStatus:
            // Holes are the peer's to know: everything is reported as data, which is always correct.
            inFlight -= 1
            return emit(.complete(id, .extents([AllocationRun(length: UInt64(range.count), hole: false)])))
        case .read:
            break
        }
        let requestCount = Int((UInt64(range.count) + Self.maximumPull - 1) / Self.maximumPull)
        var read = RemoteRead(client: id, range: range, remaining: requestCount)
        let readID = pulls.takeID()
        var offset = range.lowerBound
        while offset < range.upperBound {
            let length = min(Self.maximumPull, range.upperBound - offset)
            let requestID = pulls.takeID()
            remoteRequests[requestID] = (read: readID, range: offset..<(offset + length))
            send(.dataRequest(id: requestID, offset: offset, length: UInt32(length)))
            offset += length
        }
        read.parts.reserveCapacity(requestCount)
        remoteReads[readID] = read
    }

    /// A part of a read through the peer came back.
    mutating func remoteReadReplied(_ requestID: UInt64, status: UInt32, payload: ByteBuffer) {
        guard let request = remoteRequests.removeValue(forKey: requestID), var read = remoteReads[request.read] else { return }
        if status == 0 && payload.readableBytes == request.range.count {
            read.parts[request.range.lowerBound] = payload
        } else {
            read.failed = true
        }
        read.remaining -= 1
        guard read.remaining == 0 else {
            remoteReads[request.read] = read
            return
        }
        remoteReads[request.read] = nil
        inFlight -= 1
        if read.failed {
            log(.error, "\(peerName) could not serve the read at \(read.range.lowerBound)+\(read.range.count)")
            return emit(.complete(read.client, .failed(.io, "\(configuration.resource) on \(configuration.node) has no disk, and \(peerName) could not read \(read.range.lowerBound)+\(read.range.count)")))
        }
        counters.readBytes += UInt64(read.range.count)
        if read.parts.count == 1, let only = read.parts.first?.value {
            return emit(.complete(read.client, .data(only)))
        }
        var buffer = ByteBufferAllocator().buffer(capacity: read.range.count)
        for key in read.parts.keys.sorted() {
            var part = read.parts[key]!
            buffer.writeBuffer(&part)
        }
        emit(.complete(read.client, .data(buffer)))
    }

    /// The link went: reads through the peer fail (or wait, with suspend-io).
    mutating func failRemoteReads() {
        let reads = remoteReads
        remoteReads.removeAll()
        remoteRequests.removeAll()
        for (_, read) in reads.sorted(by: { $0.key < $1.key }) {
            inFlight -= 1
            if suspendsWithoutData {
                suspended.append(.read(read.client, offset: read.range.lowerBound, length: UInt32(read.range.count), kind: .read))
            } else {
                emit(.complete(read.client, .failed(.io, "\(configuration.resource) on \(configuration.node) has no disk, and the connection to \(peerName) was lost before it answered the read")))
            }
        }
    }

    // MARK: no data

    /// Whether a request that finds no data should wait rather than fail.
    var suspendsWithoutData: Bool { configuration.suspendWithoutData && !shuttingDown }

    /// No disk here and no UpToDate peer: say so (once per change).
    mutating func noDataAccessible() {
        guard !state.hasDisk, !state.servedByPeer else { return }
        log(.error, "no data accessible: this node has no disk and \(peerName) is \(state.connection == .connected ? "\(state.peerDisk.rawValue)" : "not connected"); "
            + (configuration.suspendWithoutData ? "I/O is suspended (on-no-data-accessible suspend-io) until data is back or `repd resume-io`" : "I/O fails (on-no-data-accessible io-error)"))
        if state.role == .primary { runHandler("pri-on-incon-degr") }
    }

    /// Data is reachable again (peer back, disk attached): suspended requests go on.
    mutating func resumeSuspended() {
        guard !suspended.isEmpty, !ioSuspended, state.hasDisk || state.servedByPeer else { return }
        let held = suspended
        suspended.removeAll()
        log(.info, "I/O goes on: \(held.count) suspended requests")
        for request in held { resubmit(request) }
    }

    mutating func resubmit(_ request: SuspendedRequest) {
        switch request {
        case .read(let id, let offset, let length, let kind): clientRead(id, offset: offset, length: length, kind: kind)
        case .write(let id, let write): clientWrite(id, write)
        case .flush(let id): clientFlush(id)
        }
    }

    // MARK: disk-timeout

    /// Records when a local I/O was issued (only with a disk-timeout).
    mutating func issued(_ token: IOToken) {
        if configuration.diskTimeoutNanoseconds > 0 { issuedAt[token] = now }
    }

    /// Every tick: the oldest local I/O older than disk-timeout detaches the disk.
    mutating func checkDiskTimeout() {
        let limit = configuration.diskTimeoutNanoseconds
        guard limit > 0, diskAttached, !issuedAt.isEmpty else { return }
        var stale: [IOToken] = []
        for (token, at) in issuedAt {
            if pending[token] == nil { stale.append(token); continue }
            if at + limit < now {
                for old in stale { issuedAt[old] = nil }
                let seconds = oneDecimal(Double(limit) / 1e9)
                let what = pendingDescription(token)
                log(.error, "the backing disk did not complete a request (\(what.operation)\(what.offset.map { " at \($0)" } ?? "")) within disk-timeout (\(seconds) s)")
                return detachDisk(DiskFailure(cause: .timeout, operation: what.operation, offset: what.offset, at: unixTime,
                                              detail: "no completion within \(seconds) s"))
            }
        }
        for old in stale { issuedAt[old] = nil }
    }

    func pendingDescription(_ token: IOToken) -> (operation: String, offset: UInt64?) {
        switch pending[token] {
        case .clientRead(_, _, let range)?: return ("read", range.lowerBound)
        case .tracked(let id)?:
            switch operations[id] {
            case .localWrite(let op)?: return ("write", op.write.range.lowerBound)
            case .peerApply(let apply)?: return ("write of the peer's data", apply.range.lowerBound)
            case .resyncRead(let range)?, .verifyRead(let range)?, .digestJob(let range, _)?, .pullServe(_, let range)?:
                return ("read", range.lowerBound)
            case nil: return ("request", nil)
            }
        case .clientFlushSync?, .peerFlushSync?, .demotionSync?, .peerLossSync?: return ("sync", nil)
        case .metadata?: return ("metadata write", nil)
        default: return ("request", nil)
        }
    }
}
