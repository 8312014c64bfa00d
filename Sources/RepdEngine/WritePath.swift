import NIOCore
import PeerProtocol
import RepdCore

/// A client write before admission: it may wait for pulled blocks, a new generation or its
/// activity-log extents.
struct PendingWrite: Sendable {
    let id: ClientRequestID
    let write: ClientWrite
}

/// A client write from admission until both disks are done.
struct LocalWriteOperation: Sendable {
    let client: ClientRequestID
    let write: ClientWrite
    var replicated: Bool
    let startedAt: UInt64
    var sequence: UInt64?
    var localDone = false
    var localError: IOFailure?
    var peerDone: Bool
    /// Protocol B: received by the peer; protocol A: sent.
    var peerReceived = false
    /// The link broke before the peer acknowledged it: only this disk has it.
    var peerLost = false
    /// Acknowledged by the peer, not yet confirmed durable there: its activity-log extents stay
    /// hot until a barrier confirms it (or the link breaks and its blocks are marked out of sync),
    /// so that a crash of this node before then resyncs them.
    var awaitingConfirmation = false
    var completed = false
    /// No local copy: the node has no disk, or its local write failed and on-io-error detached the
    /// disk. The write stands or falls with the peer's copy (whatever the protocol).
    var localMissing = false
    /// The peer reported its write failed.
    var peerFailed = false
    /// The activity log (of the disk with this number) holds the write's extents.
    var activityLogEpoch: Int?
    /// Held by fencing (resource-and-stonith): it completes once the peer is fenced.
    var held = false
}

/// A client flush: the local sync and, when replicating, the peer's flush.
struct FlushOperation: Sendable {
    let client: ClientRequestID
    var localDone = false
    var peerDone: Bool
    var failure: IOFailure?
    /// The peer flushes too (a replicated flush).
    var peerPart = false
    /// Held by fencing (resource-and-stonith): it completes once the peer is fenced.
    var held = false
}

/// The application write path's own state.
public struct WritePath: Sendable {
    /// Writes held until a new data generation is durable (after the peer was lost).
    var gated: [PendingWrite] = []
    /// A Diskless peer's writes (tracker ids) held the same way.
    var gatedApplies: [UInt64] = []
    var generationPending = false
    var flushes: [UInt64: FlushOperation] = [:]
    var nextFlushID: UInt64 = 1
    /// Writes accepted and not completed.
    public internal(set) var pendingWrites = 0
    /// Ranges whose last local write failed (on-io-error pass_on): this disk holds old data there,
    /// so reads of them fail rather than return it. A later successful write clears them.
    public internal(set) var staleRanges: [Range<UInt64>] = []

    mutating func localWriteFailed(_ range: Range<UInt64>) {
        staleRanges = staleRanges.flatMap { $0.subtracting([range]) } + [range]
    }

    mutating func localWriteSucceeded(_ range: Range<UInt64>) {
        guard !staleRanges.isEmpty else { return }
        staleRanges = staleRanges.flatMap { $0.subtracting([range]) }
    }

    func isStale(_ range: Range<UInt64>) -> Bool {
        staleRanges.contains { $0.overlaps(range) }
    }

    /// Requests split into parts (a trim of a whole disk needs more activity-log extents than the
    /// table has): the client's id and what is left, by the parts' ids.
    var splits: [UInt64: SplitWrite] = [:]
    var partOf: [ClientRequestID: UInt64] = [:]
    var nextSplit: UInt64 = 1
    /// Ids of parts: the top bit set, so they never meet a driver's request id.
    static let partBit: ClientRequestID = 1 << 63
    var nextPart: ClientRequestID = partBit
}

/// A client write carried out as several parts.
struct SplitWrite: Sendable {
    let client: ClientRequestID
    var remaining: Int
    var failure: (ClientError, String)?
}

extension Engine {
    // MARK: admission

    /// The most activity-log extents one write may hold: larger ones go in parts, so that a write
    /// can always find room in the table (and two of them can share it).
    var maximumExtentsPerWrite: Int { max(1, metadata.activityLog.slotCount / 2) }

    mutating func clientWrite(_ id: ClientRequestID, _ write: ClientWrite) {
        if shuttingDown { return completeWrite(id, .failed(.shutdown, "the resource is going down")) }
        if ioSuspended { return suspended.append(.write(id, write)) }
        let extents = ActivityLog.extents(of: write.range)
        if extents.count > maximumExtentsPerWrite && write.range.upperBound <= exportSize {
            return splitWrite(id, write)
        }
        if state.role == .primary && !state.acceptsWrites && roleChange?.isDemotion != true && suspendsWithoutData {
            // No data anywhere (on-no-data-accessible suspend-io): the write waits for it.
            return suspended.append(.write(id, write))
        }
        if !state.acceptsWrites || roleChange?.isDemotion == true {
            let why = roleChange?.isDemotion == true ? "is becoming Secondary" : "is \(state.role.rawValue) with disk \(state.disk.rawValue)"
            return completeWrite(id, .failed(.permission, "\(configuration.resource) \(why) on \(configuration.node): writes need a Primary with an UpToDate disk"))
        }
        if write.range.upperBound > exportSize {
            return completeWrite(id, .failed(.noSpace, "write at \(write.range.lowerBound)+\(write.range.count) is beyond the replicated size \(exportSize)"))
        }
        inFlight += 1
        counters.applicationRequests &+= 1
        writes.pendingWrites += 1
        let request = PendingWrite(id: id, write: write)
        if !state.hasDisk {
            // No disk (or one still negotiating its attach): straight to the peer, no activity
            // log, no generation to wait for.
            return admitLocalWrite(request)
        }
        if needsPull(write.range) {
            // Blocks not resynced yet are pulled first, so that the write lands on current data.
            pull(write.range, waiter: .write(request))
        } else {
            startAdmittedWrite(request)
        }
    }

    /// Waits for a new generation to be durable, then records the write's extents in the activity
    /// log (waiting for the transaction if needed), then admits it.
    mutating func startAdmittedWrite(_ request: PendingWrite) {
        if !state.hasDisk { return admitLocalWrite(request) }
        if writes.generationPending {
            writes.gated.append(request)
            return
        }
        if metadata.activityLog.begin(ActivityLog.extents(of: request.write.range)) {
            admitLocalWrite(request)
        } else {
            metadata.activityLogWaiting.append(request)
            driveActivityLog()
        }
    }

    /// Orders the write against overlapping ones and starts it when nothing earlier overlaps.
    mutating func admitLocalWrite(_ request: PendingWrite) {
        let replicate = replicating
        if !state.hasDisk {
            guard replicate && state.peerDisk == .upToDate else {
                return failPendingWrite(request, .io, "\(configuration.resource) on \(configuration.node) has no disk, and \(peerName) is not a connected UpToDate disk: no disk can take the write")
            }
            if diskAttached {
                // Attached and not negotiated yet: this disk misses the write.
                metadata.markOutOfSync(request.write.range)
            }
            let (id, mayStart) = tracker.admit(request.write.range, origin: .local, peerDone: false)
            var op = LocalWriteOperation(client: request.id, write: request.write, replicated: true, startedAt: now, peerDone: false)
            op.localMissing = true
            operations[id] = .localWrite(op)
            if mayStart { startLocalWrite(id) }
            return
        }
        if state.disk != .upToDate && !replicate {
            // It waited (activity log, pulled blocks) and meanwhile the UpToDate peer went away: this
            // Inconsistent disk alone must not take it.
            metadata.activityLog.end(ActivityLog.extents(of: request.write.range))
            return failPendingWrite(request, .io, "\(configuration.resource) on \(configuration.node): the UpToDate peer was lost and this disk is \(state.disk.rawValue)")
        }
        crossResyncTransfers(request.write.range)
        let (id, mayStart) = tracker.admit(request.write.range, origin: .local, peerDone: !replicate)
        var op = LocalWriteOperation(client: request.id, write: request.write, replicated: replicate, startedAt: now, peerDone: !replicate)
        op.activityLogEpoch = metadata.activityLogEpoch
        operations[id] = .localWrite(op)
        if !replicate {
            // The peer misses this write: its blocks go to the next resync.
            markOutOfSync(request.write.range)
        }
        if mayStart { startLocalWrite(id) }
    }

    /// Issues the parts of a write that touches more extents than one write may hold; the client's
    /// request completes when the last part does (failed if any part failed).
    mutating func splitWrite(_ id: ClientRequestID, _ write: ClientWrite) {
        let step = UInt64(maximumExtentsPerWrite) * Geometry.activityLogExtentSize
        var parts: [ClientWrite] = []
        var start = write.range.lowerBound
        while start < write.range.upperBound {
            let end = min(write.range.upperBound, (start / step + 1) * step)
            var part = write
            part.range = start..<end
            if let payload = write.payload {
                part.payload = payload.getSlice(at: payload.readerIndex + Int(start - write.range.lowerBound), length: Int(end - start))
            }
            parts.append(part)
            start = end
        }
        let split = writes.nextSplit
        writes.nextSplit += 1
        writes.splits[split] = SplitWrite(client: id, remaining: parts.count)
        for part in parts {
            let partID = writes.nextPart
            writes.nextPart += 1
            writes.partOf[partID] = split
            clientWrite(partID, part)
        }
    }

    /// Answers a write, or counts a part of a split one.
    mutating func completeWrite(_ id: ClientRequestID, _ result: ClientResult) {
        guard id & WritePath.partBit != 0 else { return emit(.complete(id, result)) }
        guard let split = writes.partOf.removeValue(forKey: id), var parent = writes.splits[split] else { return }
        if case .failed(let error, let message) = result, parent.failure == nil { parent.failure = (error, message) }
        parent.remaining -= 1
        guard parent.remaining == 0 else {
            writes.splits[split] = parent
            return
        }
        writes.splits[split] = nil
        if let (error, message) = parent.failure {
            emit(.complete(parent.client, .failed(error, message)))
        } else {
            emit(.complete(parent.client, .done))
        }
    }

    mutating func failPendingWrite(_ request: PendingWrite, _ error: ClientError, _ message: String) {
        inFlight -= 1
        writes.pendingWrites -= 1
        completeWrite(request.id, .failed(error, message))
    }

    /// A new generation (started when the peer was lost) is durable: held writes go on.
    mutating func generationPersisted(_ failure: IOFailure?) {
        writes.generationPending = false
        let held = writes.gated
        writes.gated.removeAll()
        let applies = writes.gatedApplies
        writes.gatedApplies.removeAll()
        // A failed write detached the disk; the peer's writes then get a failed acknowledgement.
        for id in applies { startPeerApply(id) }
        for request in held {
            if let failure {
                failPendingWrite(request, .io, "the new data generation could not be recorded: \(failure)")
            } else {
                startAdmittedWrite(request)
            }
        }
    }

    /// Writes go to the peer too: connected, and the peer has a disk.
    var replicating: Bool {
        guard let session, session.report != nil, state.connection == .connected else { return false }
        return state.peerDisk >= .inconsistent && state.peerDisk != .unknown
    }

    // MARK: local and peer I/O

    /// Sends the write to the peer (in admission order) and starts the local I/O.
    mutating func startLocalWrite(_ id: UInt64) {
        guard case .localWrite(var op)? = operations[id] else { return }
        if op.replicated, session != nil {
            let sequence = session!.takeSequence()
            session!.writesBySequence[sequence] = id
            op.sequence = sequence
            let write = op.write
            if write.kind == .data { counters.sentBytes += UInt64(write.range.count) }
            send(.write(PeerWrite(sequence: sequence, offset: write.range.lowerBound, length: UInt32(write.range.count), kind: write.kind,
                                  fua: write.fua, noHole: write.noHole, payload: write.kind == .data ? write.payload : nil)),
                 reportSent: configuration.replication == .A ? sequence : nil)
        } else if op.replicated {
            // The link went away between admission and start.
            op.replicated = false
            op.peerDone = true
            markOutOfSync(op.write.range)
            tracker.markPeerDone(id)
        }
        if !state.hasDisk || op.localMissing {
            // No disk (any more): the peer's copy is the only one.
            op.localMissing = true
            op.localDone = true
            operations[id] = .localWrite(op)
            releaseAfterLocalDone(id)
            return completeIfDone(id)
        }
        operations[id] = .localWrite(op)
        let token = newToken()
        pending[token] = .tracked(id)
        let write = op.write
        emit(.writeLocal(token, LocalWrite(range: write.range, segments: [write.range], kind: write.kind, fua: write.fua,
                                           noHole: write.noHole, fastZero: write.fastZero, payload: write.payload, replicated: op.replicated)))
    }

    mutating func writeDone(_ token: IOToken, _ failure: IOFailure?) {
        guard let io = pending.removeValue(forKey: token) else { return }
        if !issuedAt.isEmpty { issuedAt[token] = nil }
        writeFinished(io, failure)
    }

    mutating func writeFinished(_ io: PendingIO, _ failure: IOFailure?) {
        guard case .tracked(let id) = io else { return }
        switch operations[id] {
        case .localWrite(var op)?:
            op.localDone = true
            if let failure {
                // The peer may have the write and this disk not (or only part of it): the replicas differ here.
                let detaches = failureDetaches(failure)
                markOutOfSync(op.write.range)
                if detaches {
                    op.localMissing = true
                } else {
                    op.localError = failure
                    writes.localWriteFailed(op.write.range)
                }
                operations[id] = .localWrite(op)
                if detaches { localIOFailed(failure, operation: "write", offset: op.write.range.lowerBound) }
            } else {
                writes.localWriteSucceeded(op.write.range)
                operations[id] = .localWrite(op)
            }
            releaseAfterLocalDone(id)
            completeIfDone(id)
        case .peerApply(let apply)?:
            peerApplyFinished(id, apply, failure)
        default:
            break
        }
    }

    /// Starts what the tracker released once `id`'s local I/O is done.
    mutating func releaseAfterLocalDone(_ id: UInt64) {
        for ready in tracker.markLocalDone(id) { startOperation(ready) }
    }

    /// Starts an operation the conflict tracker released.
    mutating func startOperation(_ id: UInt64) {
        switch operations[id] {
        case .localWrite?: startLocalWrite(id)
        case .peerApply?: startPeerApply(id)
        case .resyncRead?: startResyncRead(id)
        case .verifyRead?: startVerifyRead(id)
        case .digestJob?: startDigestJob(id)
        case .pullServe?: startPullServe(id)
        case nil: break
        }
    }

    /// The peer has the write (protocol B: received; protocol A: sent).
    mutating func peerSentWrite(sequence: UInt64) {
        guard let id = session?.writesBySequence[sequence], case .localWrite(var op)? = operations[id] else { return }
        op.peerReceived = true
        operations[id] = .localWrite(op)
        completeIfDone(id)
    }

    mutating func receiveWriteAck(sequence: UInt64, status: UInt32) {
        guard let id = session?.writesBySequence[sequence], case .localWrite(var op)? = operations[id] else { return }
        op.peerDone = true
        operations[id] = .localWrite(op)
        tracker.markPeerDone(id)
        if status != 0 {
            log(.error, "the peer failed to write \(op.write.range.lowerBound)+\(op.write.range.count) (error \(status)); marked out of sync")
            markOutOfSync(op.write.range)
            op.peerFailed = true
            operations[id] = .localWrite(op)
        } else if op.localMissing {
            // Only the peer has it: nothing here waits for its durability (a flush asks for it).
        } else {
            // On the peer's disk, not yet known to be durable there: until a barrier says so, the
            // blocks go out of sync if the link breaks.
            session?.awaitDurability(op.write.range, threshold: sequence + 1, write: id, activityLogEpoch: op.activityLogEpoch)
            op.awaitingConfirmation = true
            operations[id] = .localWrite(op)
            if session?.resync != nil && op.localError == nil {
                // Mirrored during a resync (and written here): once durable there, these blocks need
                // not be sent again. A local failure later marks them out of sync again.
                session?.markInSyncWhenDurable(op.write.range, threshold: sequence + 1)
            }
        }
        completeIfDone(id)
        sendBarrierIfDue(force: false)
    }

    /// Completes the client's request once the protocol's condition holds; forgets the write once
    /// both disks are done.
    mutating func completeIfDone(_ id: UInt64) {
        guard case .localWrite(var op)? = operations[id], op.localDone else { return }
        let peerCondition = configuration.replication == .C || op.localMissing ? op.peerDone : (op.peerDone || op.peerReceived)
        if !op.completed && peerCondition && !op.held && fence?.freezesIO == true {
            // Frozen by fencing: nothing is acknowledged until it is known which node goes on
            // (also writes admitted before the link went that started after it; found by the
            // simulator, seed 3).
            op.held = true
            fence!.heldWrites.append(id)
        }
        if !op.completed && peerCondition && !op.held {
            op.completed = true
            inFlight -= 1
            writes.pendingWrites -= 1
            if let error = op.localError {
                completeWrite(op.client, .failed(clientError(error), error.message))
            } else if op.localMissing && (!op.replicated || op.peerLost || op.peerFailed || state.peerDisk != .upToDate) {
                // Only an UpToDate peer's copy counts: an Inconsistent one (a SyncTarget) is
                // overwritten by the resync once this disk is back (found by the simulator, seed 1438).
                let why = !op.replicated ? "the peer was not connected" : op.peerLost ? "the connection to \(peerName) was lost before it confirmed the write"
                    : op.peerFailed ? "\(peerName) could not write it" : "\(peerName)'s disk is \(state.peerDisk.rawValue), not UpToDate"
                completeWrite(op.client, .failed(.io, "\(configuration.resource) on \(configuration.node): the local disk does not have this write (\(diskAttached ? "it failed" : "no disk")), and \(why)"))
            } else if op.peerLost && state.disk != .upToDate {
                // Only an Inconsistent disk (a SyncTarget) has it: the resync would overwrite it.
                completeWrite(op.client, .failed(.io, "\(configuration.resource): the connection to the UpToDate peer was lost before it had this write, and this disk is \(state.disk.rawValue)"))
            } else {
                if op.write.kind == .data { counters.writtenBytes += UInt64(op.write.range.count) }
                completeWrite(op.client, .done)
            }
        }
        if op.completed && op.peerDone {
            operations[id] = nil
            if !op.awaitingConfirmation && op.activityLogEpoch == metadata.activityLogEpoch {
                metadata.activityLog.end(ActivityLog.extents(of: op.write.range))
                if metadata.activityLog.hasQueuedExtents { driveActivityLog() }
            }
            if let sequence = op.sequence { session?.writesBySequence[sequence] = nil }
            roleChangeProgress()
        } else {
            operations[id] = .localWrite(op)
        }
    }

    func clientError(_ failure: IOFailure) -> ClientError {
        switch failure.kind {
        case .io: .io
        case .noSpace: .noSpace
        case .notSupported: .notSupported
        case .invalid: .invalid
        case .shutdown: .shutdown
        }
    }

    /// Marks blocks out of sync; a pending "in sync once durable" for them no longer holds.
    mutating func markOutOfSync(_ range: Range<UInt64>) {
        metadata.markOutOfSync(range)
        session?.forgetInSyncWhenDurable(overlapping: range)
        invalidateResyncTransfers(overlapping: range)
    }

    // MARK: flush

    mutating func clientFlush(_ id: ClientRequestID) {
        if shuttingDown { return emit(.complete(id, .failed(.shutdown, "the resource is going down"))) }
        if ioSuspended { return suspended.append(.flush(id)) }
        if !state.hasDisk && !state.servedByPeer && suspendsWithoutData {
            return suspended.append(.flush(id))
        }
        if state.disk <= .inconsistent && !state.readsThroughPeer && !state.servedByPeer {
            // No good data here, and no peer that has it: nothing can be made durable.
            return emit(.complete(id, .failed(.io, "\(configuration.resource) has no UpToDate data on \(configuration.node) (disk \(state.disk.rawValue), peer \(state.connection.rawValue))")))
        }
        inFlight += 1
        let flushID = writes.nextFlushID
        writes.nextFlushID += 1
        let peer = replicating && session != nil
        writes.flushes[flushID] = FlushOperation(client: id, peerDone: !peer, peerPart: peer)
        if peer {
            // The peer's flush doubles as a durability barrier for the writes acknowledged so far.
            let sequence = session!.sendBarrier(forFlush: flushID, now: now)
            send(.flush(sequence: sequence))
        }
        guard state.hasDisk else {
            // No disk: the peer's flush is the whole of it.
            writes.flushes[flushID]!.localDone = true
            return completeFlushIfDone(flushID)
        }
        let token = newToken()
        pending[token] = .clientFlushSync(flushID)
        emit(.syncLocal(token))
    }

    mutating func syncDone(_ token: IOToken, _ failure: IOFailure?) {
        guard let io = pending.removeValue(forKey: token) else { return }
        if !issuedAt.isEmpty { issuedAt[token] = nil }
        syncFinished(io, failure)
    }

    mutating func syncFinished(_ io: PendingIO, _ failure: IOFailure?) {
        // A failed sync is a failed disk (on-io-error detach): what it was for is settled without it.
        let detaches = failure.map(failureDetaches) ?? false
        if let failure, detaches { localIOFailed(failure, operation: "sync", offset: nil) }
        switch io {
        case .clientFlushSync(let flushID):
            writes.flushes[flushID]?.localDone = true
            if let failure {
                if !detaches || writes.flushes[flushID]?.peerPart != true {
                    writes.flushes[flushID]?.failure = failure
                }
            }
            completeFlushIfDone(flushID)
        case .peerFlushSync(let sequence, let connection):
            // Detached: the peer knows (our state went first) and marks what we miss.
            emit(.send(connection, .flushAck(sequence: sequence, status: failure == nil || detaches ? 0 : 5)))
        case .demotionSync:
            demotionSynced(detaches ? nil : failure)
        default:
            break
        }
    }

    mutating func completeFlushIfDone(_ flushID: UInt64) {
        guard var flush = writes.flushes[flushID], flush.localDone, flush.peerDone, !flush.held else { return }
        if fence?.freezesIO == true {
            flush.held = true
            writes.flushes[flushID] = flush
            fence!.heldFlushes.append(flushID)
            return
        }
        writes.flushes[flushID] = nil
        inFlight -= 1
        if let failure = flush.failure {
            emit(.complete(flush.client, .failed(.io, failure.message)))
        } else {
            emit(.complete(flush.client, .done))
        }
    }

    /// The peer's flushAck: a client flush completes, and every write and resync transfer the
    /// peer had before the barrier is durable there.
    mutating func receiveFlushAck(sequence: UInt64, status: UInt32) {
        guard let barrier = session?.barrierAcknowledged(sequence) else { return }
        if status != 0 && !state.peerHasDisk {
            // The peer's disk went: what it acknowledged is marked out of sync already.
        } else if status != 0 {
            log(.error, "the peer could not make its disk durable (error \(status)); the link is dropped")
            if let connection = session?.connection {
                emit(.dropConnection(connection, reason: "the peer failed a flush"))
            }
        } else {
            let confirmed = session!.confirmDurable(through: sequence)
            for range in confirmed.inSync { metadata.markInSync(range) }
            for entry in confirmed.writes { releaseActivityLog(after: entry) }
            confirmResyncTransfers(through: sequence)
        }
        if let flushID = barrier.flush {
            writes.flushes[flushID]?.peerDone = true
            if status != 0 { writes.flushes[flushID]?.failure = IOFailure(.io, "the peer could not flush (error \(status))") }
            completeFlushIfDone(flushID)
        }
        pumpResync()
    }

    /// A write's durability on the peer is settled (confirmed, or its blocks marked out of sync): its
    /// activity-log extents are released now, or when the write finishes if it is still in flight.
    mutating func releaseActivityLog(after entry: DurabilityEntry) {
        guard let id = entry.write else { return }
        if case .localWrite(var op)? = operations[id] {
            op.awaitingConfirmation = false
            operations[id] = .localWrite(op)
        } else if entry.activityLogEpoch == metadata.activityLogEpoch {
            metadata.activityLog.end(ActivityLog.extents(of: entry.range))
            if metadata.activityLog.hasQueuedExtents { driveActivityLog() }
        }
    }

    /// Asks the peer for a durability barrier when one is due: at once (`force`), when enough
    /// acknowledged bytes wait for one, or `barrierInterval` after the last barrier. One at a time.
    mutating func sendBarrierIfDue(force: Bool) {
        guard let session, session.report != nil, !session.barrierInFlight, session.hasUnconfirmed else { return }
        let due = force || session.bytesAwaitingDurability >= configuration.barrierBytes
            || now >= session.lastBarrierAt &+ configuration.barrierInterval
        guard due else { return }
        let sequence = self.session!.sendBarrier(forFlush: nil, now: now)
        send(.flush(sequence: sequence))
    }

    /// A replicated write the peer leaves unacknowledged longer than `timeout` breaks the link.
    /// DRBD's `timeout` and `ko-count` for replicated writes: each `timeout` the oldest write waits
    /// for the peer is a strike, and the peer is probed with a ping (a peer that does not answer
    /// within ping-timeout is dead, and the link drops it). A peer that answers but does not
    /// acknowledge (its disk is stuck) is dropped at `ko-count` strikes, so that it cannot stall
    /// this node's writes for longer.
    mutating func checkAcknowledgementTimeout() {
        guard let connection = session?.connection else { return }
        let limit = max(1, configuration.ackTimeoutNanoseconds)
        var oldest: UInt64?
        for case .localWrite(let write) in operations.values where write.replicated && !write.peerDone {
            oldest = min(oldest ?? write.startedAt, write.startedAt)
        }
        guard let oldest, now > oldest + limit else {
            session!.koStrikes = 0
            return
        }
        let strikes = Int((now - oldest) / limit)
        guard strikes > session!.koStrikes else { return }
        session!.koStrikes = strikes
        let seconds = Double(limit) / 1e9
        if configuration.koCount > 0 && strikes >= configuration.koCount {
            // As DRBD: the peer is expelled and this node goes StandAlone. Reconnecting at once
            // would only stall the writes again for ko-count timeouts; `repd connect` brings it
            // back once the peer's disk answers.
            let reason = "the peer did not acknowledge a write within ko-count \(configuration.koCount) × timeout \(seconds) s"
                + " (it answers, but its writes do not complete): StandAlone until `repd connect \(configuration.resource)`"
            log(.warning, reason)
            goStandAlone(reason: reason)
        } else {
            emit(.probePeer(connection))
            log(.warning, "the peer has not acknowledged a write for \(Double(now - oldest) / 1e9) s: strike \(strikes)"
                + (configuration.koCount > 0 ? " of ko-count \(configuration.koCount)" : " (ko-count 0: not dropped for that)") + "; pinging it")
        }
    }
}
