import RepdCore

/// The metadata as the engine keeps it: the superblock it intends, the dirty bitmap and which of
/// its pages the disk does not have yet, and the activity log. No I/O: writes leave as
/// `Action.persist`, and the driver runs them one after the other on its metadata queue.
public struct MetadataKeeper: Sendable {
    public internal(set) var superblock: Superblock
    public internal(set) var bitmap: DirtyBitmap
    /// Bitmap pages changed since they were last handed to the driver.
    var dirtyPages = Set<Int>()
    public internal(set) var activityLog: ActivityLog
    /// Writes waiting for their activity-log extents to be recorded.
    var activityLogWaiting: [PendingWrite] = []
    /// Writes of a Diskless peer (tracker ids) waiting for theirs: this disk is the only copy.
    var activityLogWaitingApplies: [UInt64] = []
    /// Counts the disks this engine has used: references taken in the activity log of an earlier
    /// disk are never dropped from a later one.
    var activityLogEpoch = 0
    /// An activity-log transaction is being written.
    var activityLogInFlight = false
    var recoveredExtents = 0
    var damagedActivityLogBlocks = 0
    var lastLazyFlush: UInt64 = 0
    /// (time, activity-log use clock) at past ticks, the oldest first: the extents used before
    /// the mark older than `activityLogRetireAfter` are idle.
    var useMarks: [(at: UInt64, clock: UInt64)] = []
    var lastRetirement: UInt64 = 0

    init(superblock: Superblock, bitmap: DirtyBitmap, activityLog: ActivityLog) {
        self.superblock = superblock
        self.bitmap = bitmap
        self.activityLog = activityLog
    }

    mutating func markOutOfSync(_ range: Range<UInt64>) {
        dirtyPages.formUnion(bitmap.markOutOfSync(byteRange: range))
    }

    mutating func markInSync(_ range: Range<UInt64>) {
        dirtyPages.formUnion(bitmap.markInSync(byteRange: range))
    }

    mutating func markAllOutOfSync() {
        dirtyPages.formUnion(bitmap.markAllOutOfSync())
    }

    mutating func clearBitmap() {
        if bitmap.outOfSyncCount > 0 { dirtyPages.formUnion(bitmap.clearAll()) }
    }

    /// The changed bitmap pages as a metadata write (made durable when `sync`).
    mutating func takeDirtyPages(sync: Bool) -> MetadataWrite {
        let pages = dirtyPages.sorted().map { (index: $0, bytes: bitmap.page($0)) }
        dirtyPages.removeAll()
        return MetadataWrite(bitmapPages: pages, syncBitmap: sync && !pages.isEmpty)
    }

    /// The superblock to write next (its update counter advanced).
    mutating func nextSuperblock() -> Superblock {
        superblock.updateCounter += 1
        return superblock
    }

    /// The flags a state report carries.
    var reportFlags: (crashedPrimary: Bool, consistent: Bool, wasUpToDate: Bool) {
        (superblock.flags.contains(.crashedPrimary), superblock.flags.contains(.consistent), superblock.flags.contains(.wasUpToDate))
    }
}

/// What to do once a metadata write is durable (or failed).
enum AfterPersist: Sendable {
    case nothing
    case startup
    case lazyBitmap
    /// An activity-log transaction: its extents become hot and waiting writes go on.
    case activityLog
    /// A role change, committed (state and reply) once its superblock is durable.
    case roleChange
    /// Writes held until a new data generation is durable go on.
    case generationGate
    /// The SyncTarget's Inconsistent flag is durable: resync data may now land on the disk.
    case syncTargetReady(ConnectionID)
    /// A grown disk's bitmap and layout are durable: the replicated size may grow (Resize.swift).
    case resized(CommandID)
}

extension Engine {
    /// Hands a metadata write to the driver, with what to do once it is durable.
    mutating func emitPersist(_ write: MetadataWrite, then: AfterPersist) {
        guard diskAttached else {
            // No disk, no metadata: what waited for the write goes on as if it were done.
            return persistenceSkipped(then)
        }
        let token = newToken()
        counters.bitmapWrites += UInt64(write.bitmapPages.count)
        pending[token] = .metadata(then, write)
        emit(.persist(token, write))
    }

    /// A superblock transaction: the superblock as it is now (with the bitmap pages changed so far
    /// in front), made durable; `then` runs when it is.
    mutating func commitSuperblock(then: AfterPersist = .nothing) {
        var write = metadata.takeDirtyPages(sync: false)
        write.superblock = metadata.nextSuperblock()
        emitPersist(write, then: then)
    }

    /// The lazy bitmap writer (every `bitmapFlushInterval`): the activity log covers the extents
    /// whose bits are not on disk yet, so no sync is needed.
    mutating func flushBitmapLazily() {
        guard !metadata.dirtyPages.isEmpty else { return }
        emitPersist(metadata.takeDirtyPages(sync: false), then: .lazyBitmap)
    }

    /// What waited for a metadata write when there is no disk to write it to.
    mutating func persistenceSkipped(_ then: AfterPersist) {
        switch then {
        case .roleChange: roleChangePersisted(nil)
        case .generationGate: generationPersisted(nil)
        case .syncTargetReady(let connection): syncTargetReady(connection, nil)
        case .activityLog: activityLogWritten(nil)
        case .resized(let id): resizePersisted(id, IOFailure(.io, "the disk was detached"))
        case .nothing, .startup, .lazyBitmap: break
        }
    }

    mutating func persisted(_ token: IOToken, _ failure: IOFailure?) {
        guard case .metadata(let then, let write)? = pending.removeValue(forKey: token) else { return }
        if !issuedAt.isEmpty { issuedAt[token] = nil }
        if let failure {
            // Pages that did not reach the disk are written again next time.
            metadata.dirtyPages.formUnion(write.bitmapPages.map(\.index))
            log(.error, "cannot write metadata: \(failure)")
            if failure.kind != .shutdown {
                // Without its metadata the disk cannot be trusted: it goes (whatever on-io-error says).
                localIOFailed(failure, operation: "metadata write", offset: nil, metadata: true)
                if !diskAttached { return persistenceSkipped(then) }
            }
        }
        switch then {
        case .nothing, .lazyBitmap:
            break
        case .startup:
            if failure != nil { log(.error, "the metadata could not be written at startup") }
        case .activityLog:
            activityLogWritten(failure)
        case .roleChange:
            roleChangePersisted(failure)
        case .generationGate:
            generationPersisted(failure)
        case .syncTargetReady(let connection):
            syncTargetReady(connection, failure)
        case .resized(let id):
            resizePersisted(id, failure)
        }
    }

    // MARK: the activity log

    /// Writes the next activity-log transaction if writes wait for one and none is being written.
    /// Extents it evicts lose their protection: the writes completed there must be durable (a data
    /// sync), and so must the bitmap pages, before the transaction that evicts them.
    mutating func driveActivityLog() {
        guard !metadata.activityLogInFlight, diskAttached else { return }
        // Extents waiting writes already hold stay; if that leaves no room, only the first waiting
        // write's (it then gets all of its extents, and the others follow it).
        let waiting = metadata.activityLogWaiting.map { ActivityLog.extents(of: $0.write.range) }
            + metadata.activityLogWaitingApplies.compactMap { id -> ClosedRange<UInt32>? in
                guard case .peerApply(let apply)? = operations[id] else { return nil }
                return ActivityLog.extents(of: apply.range)
            }
        let all = Set(waiting.flatMap { $0 })
        guard let prepared = metadata.activityLog.prepareTransaction(keeping: all)
                ?? waiting.first.flatMap({ metadata.activityLog.prepareTransaction(keeping: Set($0)) }) else {
            // No room: extents stay hot while the peer's durability of writes there is unconfirmed.
            // A barrier now releases them, rather than at the next interval.
            if !waiting.isEmpty { sendBarrierIfDue(force: true) }
            return
        }
        persistActivityLog(prepared)
    }

    /// Hands a prepared transaction to the metadata queue. When it evicts or retires extents, the
    /// writes completed there and the changed bitmap pages are made durable first.
    mutating func persistActivityLog(_ prepared: ActivityLog.Prepared) {
        var write = prepared.evicted.isEmpty ? MetadataWrite() : metadata.takeDirtyPages(sync: true)
        write.syncDataFirst = !prepared.evicted.isEmpty
        write.activityLog = [(prepared.transaction, prepared.ringSlot)]
        metadata.activityLogInFlight = true
        counters.activityLogWrites += 1
        emitPersist(write, then: .activityLog)
    }

    /// Retires the extents nobody wrote for `activityLogRetireAfter` (at most once a second, only
    /// when no write waits for the activity log): a crash then resyncs the recently written extents,
    /// not every extent written since the table last filled up.
    mutating func retireIdleExtents() {
        let after = configuration.activityLogRetireAfter
        guard after > 0 else { return }
        metadata.useMarks.append((at: now, clock: metadata.activityLog.useClock))
        while metadata.useMarks.count >= 2, metadata.useMarks[1].at + after <= now { metadata.useMarks.removeFirst() }
        guard let mark = metadata.useMarks.first, mark.at + after <= now,
              now >= metadata.lastRetirement + 1_000_000_000,
              !metadata.activityLogInFlight, diskAttached, metadata.activityLogWaiting.isEmpty,
              metadata.activityLogWaitingApplies.isEmpty, !metadata.activityLog.hasQueuedExtents,
              let prepared = metadata.activityLog.prepareRetirement(usedAtOrBefore: mark.clock) else { return }
        metadata.lastRetirement = now
        persistActivityLog(prepared)
    }

    mutating func activityLogWritten(_ failure: IOFailure?) {
        metadata.activityLogInFlight = false
        let waiting = metadata.activityLogWaiting
        metadata.activityLogWaiting.removeAll()
        let applies = metadata.activityLogWaitingApplies
        metadata.activityLogWaitingApplies.removeAll()
        if let failure {
            log(.error, "cannot write the activity log: \(failure); failing the writes that waited for it")
            metadata.activityLog.failed()
            for write in waiting { failPendingWrite(write, .io, "activity log write failed: \(failure)") }
            for id in applies { startPeerApply(id) }
            return
        }
        guard diskAttached else {
            // The disk went meanwhile: the writes go on without it.
            for write in waiting { admitLocalWrite(write) }
            for id in applies { startPeerApply(id) }
            return
        }
        metadata.activityLog.committed()
        for id in applies { startPeerApply(id) }
        // Every waiting write tries its extents first; only then is the next transaction prepared
        // (preparing it in between could evict the extents a later write in the list just got).
        for write in waiting {
            if metadata.activityLog.begin(ActivityLog.extents(of: write.write.range)) {
                admitLocalWrite(write)
            } else {
                metadata.activityLogWaiting.append(write)
            }
        }
        driveActivityLog()
    }
}
