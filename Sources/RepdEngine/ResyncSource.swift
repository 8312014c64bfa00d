import NIOCore
import PeerProtocol
import RepdCore

/// A running resync, on either side.
public struct ResyncState: Sendable {
    public let source: Bool
    public let full: Bool
    var started = false
    var cursor = 0
    /// SyncSource: transfers by tracker id, from the local read until the target's disk has them durably.
    var transfers: [UInt64: ResyncTransfer] = [:]
    /// Bytes being read or sent and not acknowledged (what the window and the controller count).
    public internal(set) var inFlightBytes = 0
    /// Bytes acknowledged by the target, waiting for a barrier to confirm them durable.
    var awaitingDurabilityBytes = 0
    public internal(set) var totalBlocks: UInt64 = 0
    public internal(set) var doneBlocks: UInt64 = 0
    public let startedAt: UInt64
    var finishedSending = false
    /// SyncSource: the rate controller, the bytes it allows now, and what was acknowledged since its last tick.
    public internal(set) var controller: ResyncController?
    var credit = 0
    var acknowledgedSinceTick = 0
    /// Resync data bytes this sync moved (sent on the source, received on the target).
    public internal(set) var movedBytes: UInt64 = 0
    /// csums-alg: blocks found identical and not sent.
    public internal(set) var sameBlocks: UInt64 = 0
    public internal(set) var checksumAlgorithm: String?
    /// A transfer failed (read error here, write error there): the next pass waits until then.
    var retryAt: UInt64 = 0
    /// Progress samples (time, done blocks) for the current speed.
    public internal(set) var samples: [(at: UInt64, done: UInt64)] = []
    public internal(set) var pausedNanoseconds: UInt64 = 0
    public internal(set) var pausedSince: UInt64?

    init(source: Bool, full: Bool, startedAt: UInt64) {
        self.source = source
        self.full = full
        self.startedAt = startedAt
    }
}

/// One range moved by the SyncSource.
struct ResyncTransfer: Sendable {
    enum Phase: Sendable {
        case reading
        /// csums-alg: the target's digests were asked for.
        case comparing(data: ByteBuffer, digests: [[UInt8]])
        /// Parts sent as syncData, waiting for the target's syncAck.
        case sending(awaiting: [Range<UInt64>], failed: Bool, threshold: UInt64)
        /// On the target's disk; a barrier with at least this sequence makes it durable there.
        case acknowledged(threshold: UInt64)
        /// The target pulled these blocks (dataRequest): the resync does not send them.
        case serving
    }
    let range: Range<UInt64>
    var phase: Phase = .reading
    /// The blocks were marked out of sync again meanwhile: do not clear them when confirmed.
    var stale = false
    /// csums-alg: a write changed the range after it was read: the data read must not be sent.
    var crossed = false
}

extension Engine {
    /// Starts a resync in the direction the decision (or an operator) chose, once its
    /// `before-resync-source` / `before-resync-target` handler succeeded (DRBD waits for it, and
    /// drops the connection when it fails: the LVM snapshot recipe depends on both).
    mutating func beginSync(source: Bool, full: Bool) {
        guard let connection = session?.connection, session!.pendingSyncStart == nil else { return }
        let handler = source ? "before-resync-source" : "before-resync-target"
        if configuration.handlers.contains(handler) {
            // Nothing of the resync happens meanwhile: the peer's messages wait, in order.
            session!.pendingSyncStart = (source, full)
            if session!.deferredMessages == nil { session!.deferredMessages = [] }
            log(.info, "the \(handler) handler runs; the resync \(source ? "from" : "to") this node waits for it")
            _ = runHandler(handler, purpose: .beforeResync(connection))
            return
        }
        startSync(source: source, full: full)
    }

    /// The `before-resync-*` handler ended: the resync starts, or the connection is dropped.
    mutating func beforeResyncFinished(_ connection: ConnectionID, name: String, _ result: HandlerResult) {
        guard session?.connection == connection, let (source, full) = session!.pendingSyncStart else { return }
        session!.pendingSyncStart = nil
        guard case .exited(0) = result else {
            let outcome: String
            switch result {
            case .exited(let status): outcome = "exited with status \(status)"
            case .failed(let why): outcome = "failed (\(why))"
            }
            let why = "the \(name) handler \(outcome): the resync was not started and the connection is dropped; it is tried again at the next connection"
            log(.error, why)
            link.message = why
            link.resyncBlocked = why
            session!.deferredMessages = nil
            emit(.dropConnection(connection, reason: why))
            return
        }
        startSync(source: source, full: full)
        guard source, session?.connection == connection, let deferred = session?.deferredMessages else { return }
        // A SyncSource replays what the peer sent meanwhile (a SyncTarget does once its disk is
        // recorded Inconsistent: syncTargetReady).
        session!.deferredMessages = nil
        for message in deferred {
            guard session?.connection == connection else { return }
            peerMessage(message)
        }
    }

    mutating func startSync(source: Bool, full: Bool) {
        guard let connection = session?.connection else { return }
        link.resyncBlocked = nil
        var progress = ResyncState(source: source, full: full, startedAt: now)
        if source {
            progress.controller = ResyncController(settings: configuration.resync)
            if let csums = configuration.csumsAlgorithm, EngineConfiguration.digestAlgorithms.contains(csums) { progress.checksumAlgorithm = csums }
        }
        session!.resync = progress
        session!.peerBitmapDone = false
        if link.userPausedSync {
            // Paused here before the peer connected: it must hold there too.
            send(.syncPause(paused: true))
        }
        if full {
            metadata.markAllOutOfSync()
            // Only what both disks hold is replicated: a larger disk's tail is not resynced.
            if exportSize < configuration.usableSize { metadata.markInSync(exportSize..<configuration.usableSize) }
        }
        updateSyncReplicationState()
        if source {
            if state.disk == .consistent || state.disk == .outdated {
                // Chosen as the source (a split-brain resolution, an operator): this data is the
                // reference, also when it was Outdated (seed 8531: an Outdated node whose peer
                // connected with --discard-my-data stayed Outdated after the resync it sourced).
                _ = try? state.apply(.attach(.upToDate))
                metadata.superblock.flags.formUnion([.consistent, .wasUpToDate])
                sendState()
            }
            if let csums = configuration.csumsAlgorithm, progress.checksumAlgorithm == nil {
                log(.warning, "csums-alg \(csums) is not supported (use \(EngineConfiguration.digestAlgorithms.joined(separator: ", "))); resync sends every block")
            }
            commitSuperblock()
        } else {
            _ = try? state.apply(.attach(.inconsistent))
            metadata.superblock.flags.remove(.consistent)
            metadata.superblock.flags.remove(.wasUpToDate)
            sendState()
            // No resync data may land before the disk is recorded Inconsistent: until then,
            // messages from the peer wait, in order (with those that waited for the handler).
            if session!.deferredMessages == nil { session!.deferredMessages = [] }
            commitSuperblock(then: .syncTargetReady(connection))
        }
        if !full {
            // Both sides send their bitmaps: the sync covers the union of both sides' changes.
            var count: UInt32 = 0
            for page in 0..<metadata.bitmap.pageCount {
                let bytes = metadata.bitmap.page(page)
                if bytes.contains(where: { $0 != 0 }) {
                    send(.bitmapPage(index: UInt32(page), bytes: ByteBuffer(bytes: bytes)))
                    count += 1
                }
            }
            send(.bitmapDone(pages: count))
        } else {
            session!.peerBitmapDone = true
        }
        log(.info, "resync starting as \(source ? "SyncSource" : "SyncTarget")\(full ? " (full sync)" : " (blocks out of sync on either side)")")
        pumpResync()
    }

    mutating func mergePeerBitmapPage(index: Int, bytes: ByteBuffer) {
        let blocksPerPage = PeerWire.bitmapPageSize * 8
        var bytes = bytes
        var byteIndex = 0
        while let byte = bytes.readInteger(as: UInt8.self) {
            if byte != 0 {
                for bit in 0..<8 where byte & (1 << bit) != 0 {
                    let block = UInt64(index) * UInt64(blocksPerPage) + UInt64(byteIndex * 8 + bit)
                    if block < UInt64(metadata.bitmap.blockCount) {
                        metadata.markOutOfSync((block * Geometry.blockSize)..<((block + 1) * Geometry.blockSize))
                    }
                }
            }
            byteIndex += 1
        }
    }

    /// Keeps resync data in flight, from the bitmap, as the rate controller allows: up to its
    /// window (c-fill-target), or 16 MiB. Called at each tick and at each acknowledgement.
    mutating func pumpResync() {
        guard var sync = session?.resync, sync.source, session!.peerBitmapDone else { return }
        if !sync.started {
            sync.started = true
            sync.totalBlocks = UInt64(metadata.bitmap.outOfSyncCount)
            session!.resync = sync
            send(.syncStart(sourceIsSender: true, totalBlocks: sync.totalBlocks, full: sync.full))
        }
        if syncPaused { return }
        let blockSize = Int(Geometry.blockSize)
        let limited = sync.controller != nil
        // c-fill-target: no more than that in flight; otherwise up to 16 MiB.
        let window = sync.controller?.window ?? ResyncController.maximumWindow
        // Blocks already on their way (or pulled by the target) are not sent again.
        let busy = sync.transfers.values.map { Int($0.range.lowerBound / Geometry.blockSize)..<Int($0.range.upperBound / Geometry.blockSize) }
            .sorted { $0.lowerBound < $1.lowerBound }
        while sync.inFlightBytes < window, !limited || sync.credit > 0,
              let first = metadata.bitmap.nextOutOfSync(fromBlock: sync.cursor) {
            if let covering = busy.first(where: { $0.contains(first) }) {
                sync.cursor = covering.upperBound
                continue
            }
            let nextBusy = busy.first(where: { $0.lowerBound > first })?.lowerBound ?? Int.max
            // 1 MiB per transfer at most, less when the rate controller allows less, and with
            // csums-alg as many blocks as one digest reply describes.
            // A quarter of the window per transfer at most: reading, sending and writing of
            // several transfers overlap.
            var maximumRun = max(1, min(256, window / 4 / blockSize, (window - sync.inFlightBytes) / blockSize))
            if limited { maximumRun = max(1, min(maximumRun, sync.credit / blockSize)) }
            if let algorithm = sync.checksumAlgorithm { maximumRun = min(maximumRun, EngineConfiguration.blocksPerDigestRequest(algorithm)) }
            var last = first
            while last + 1 < metadata.bitmap.blockCount && last + 1 < nextBusy && last + 1 - first < maximumRun
                    && metadata.bitmap.isOutOfSync(block: last + 1) { last += 1 }
            sync.cursor = last + 1
            let range = UInt64(first) * Geometry.blockSize..<UInt64(last + 1) * Geometry.blockSize
            let (id, mayStart) = tracker.admit(range, origin: .resync, peerDone: false)
            operations[id] = .resyncRead(range: range)
            sync.transfers[id] = ResyncTransfer(range: range)
            sync.inFlightBytes += range.count
            if limited { sync.credit -= range.count }
            session!.resync = sync
            if mayStart { startResyncRead(id) }
            guard let updated = session?.resync else { return }
            sync = updated
        }
        session!.resync = sync
        if sync.transfers.isEmpty && metadata.bitmap.nextOutOfSync(fromBlock: sync.cursor) == nil {
            if metadata.bitmap.outOfSyncCount > 0 {
                // Blocks marked again behind the cursor (a failed transfer, a write the peer missed):
                // another pass, at most once a second after a failure.
                guard now >= sync.retryAt else { return }
                session!.resync!.cursor = 0
                if metadata.bitmap.nextOutOfSync(fromBlock: 0) != nil { return pumpResync() }
            }
            finishSyncSource()
        } else if !sync.transfers.isEmpty && sync.inFlightBytes == 0 {
            // Everything sent is acknowledged and only durability is missing: ask for it now.
            sendBarrierIfDue(force: true)
        }
    }

    mutating func startResyncRead(_ id: UInt64) {
        guard let transfer = session?.resync?.transfers[id] else {
            // The resync ended (link lost) before this read started.
            operations[id] = nil
            tracker.markPeerDone(id)
            releaseAfterLocalDone(id)
            return
        }
        let token = newToken()
        pending[token] = .tracked(id)
        let kind: LocalReadKind = session!.resync!.checksumAlgorithm.map { .dataAndDigests(algorithm: $0) } ?? .data
        emit(.readLocal(token, range: transfer.range, kind: kind))
    }

    mutating func resyncReadDone(_ id: UInt64, range: Range<UInt64>, _ result: Result<ReadOutcome, IOFailure>) {
        operations[id] = nil
        guard session?.resync?.transfers[id] != nil else {
            tracker.markPeerDone(id)
            releaseAfterLocalDone(id)
            return
        }
        switch result {
        case .success(let outcome):
            if let algorithm = session!.resync!.checksumAlgorithm, let data = outcome.data, let digests = outcome.digests {
                // Ask for the target's digests first; only differing blocks are sent.
                session!.resync!.transfers[id]!.phase = .comparing(data: data, digests: digests)
                send(.checksumRequest(offset: range.lowerBound, length: UInt32(range.count), algorithm: algorithm))
            } else if let data = outcome.data {
                sendResyncData(id, range: range, parts: [range], from: data)
            }
        case .failure(let failure):
            log(.error, "resync read at \(range): \(failure)")
            session!.resync!.retryAt = now + 1_000_000_000
            tracker.markPeerDone(id)
            session!.resync!.transfers[id] = nil
            session!.resync!.inFlightBytes -= range.count
        }
        // Sent before the writes that waited for this read are released, so the target applies
        // this data before theirs.
        releaseAfterLocalDone(id)
        pumpResync()
    }

    /// Sends `parts` of a transfer read into `buffer` as syncData messages.
    mutating func sendResyncData(_ id: UInt64, range: Range<UInt64>, parts: [Range<UInt64>], from buffer: ByteBuffer) {
        guard session != nil else { return }
        for part in parts {
            let start = Int(part.lowerBound - range.lowerBound)
            guard let slice = buffer.getSlice(at: buffer.readerIndex + start, length: part.count) else { continue }
            send(.syncData(offset: part.lowerBound, payload: slice))
            counters.sentBytes += UInt64(part.count)
            session!.resync?.movedBytes += UInt64(part.count)
        }
        let threshold = session!.nextSequence
        session!.resync?.transfers[id]?.phase = .sending(awaiting: parts, failed: false, threshold: threshold)
    }

    mutating func receiveSyncAck(offset: UInt64, length: UInt32, status: UInt32) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        guard !overflow, let sync = session?.resync, sync.source else { return }
        let acked = offset..<end
        guard let (id, transfer) = sync.transfers.first(where: { entry in
            if case .sending(let awaiting, _, _) = entry.value.phase { return awaiting.contains(acked) }
            return false
        }), case .sending(var awaiting, var failed, let threshold) = transfer.phase else { return }
        awaiting.removeAll { $0 == acked }
        if status != 0 {
            log(.error, "the peer could not write resync data at \(acked) (error \(status))")
            failed = true
        }
        session!.resync!.transfers[id]!.phase = .sending(awaiting: awaiting, failed: failed, threshold: threshold)
        guard awaiting.isEmpty else { return }
        transferAcknowledged(id, ok: !failed, threshold: threshold)
    }

    /// The target has (or, with csums-alg, already had) every block of the transfer; it counts as
    /// synced once a barrier confirms the target's disk has it durably.
    mutating func transferAcknowledged(_ id: UInt64, ok: Bool, threshold: UInt64) {
        guard var sync = session?.resync, let transfer = sync.transfers[id] else { return }
        sync.inFlightBytes -= transfer.range.count
        sync.acknowledgedSinceTick += transfer.range.count
        tracker.markPeerDone(id)
        if ok {
            sync.transfers[id]!.phase = .acknowledged(threshold: threshold)
            sync.awaitingDurabilityBytes += transfer.range.count
            sync.doneBlocks += UInt64(transfer.range.count) / Geometry.blockSize
        } else {
            sync.transfers[id] = nil
            sync.retryAt = now + 1_000_000_000
        }
        session!.resync = sync
        sendBarrierIfDue(force: false)
        pumpResync()
    }

    /// A barrier confirmed durability through `sequence`: acknowledged transfers are synced.
    mutating func confirmResyncTransfers(through sequence: UInt64) {
        guard let sync = session?.resync, sync.source else { return }
        for (id, transfer) in sync.transfers {
            guard case .acknowledged(let threshold) = transfer.phase, threshold <= sequence else { continue }
            session!.resync!.transfers[id] = nil
            session!.resync!.awaitingDurabilityBytes -= transfer.range.count
            if !transfer.stale { metadata.markInSync(transfer.range) }
        }
    }

    /// A write to blocks whose data was read for a digest comparison: that data is old now.
    mutating func crossResyncTransfers(_ range: Range<UInt64>) {
        guard let sync = session?.resync, sync.source, sync.checksumAlgorithm != nil else { return }
        for (id, transfer) in sync.transfers where transfer.range.overlaps(range) {
            switch transfer.phase {
            case .reading, .comparing: session!.resync!.transfers[id]!.crossed = true
            case .sending, .acknowledged, .serving: break
            }
        }
    }

    /// Blocks marked out of sync again while their transfer waits for confirmation stay marked.
    mutating func invalidateResyncTransfers(overlapping range: Range<UInt64>) {
        guard let sync = session?.resync, sync.source else { return }
        for (id, transfer) in sync.transfers where transfer.range.overlaps(range) {
            session!.resync!.transfers[id]!.stale = true
        }
    }

    mutating func finishSyncSource() {
        guard let sync = session?.resync, !sync.finishedSending else { return }
        session!.resync!.finishedSending = true
        let blocks = sync.doneBlocks
        let seconds = Double(now - min(now, sync.startedAt)) / 1e9
        let same = sync.checksumAlgorithm.map { ", \(sync.sameBlocks) found identical by \($0) and not sent" } ?? ""
        let summary = "resync finished as SyncSource: \(blocks) blocks (\(Geometry.kibibytes(ofBlocks: blocks)) KiB) in \(oneDecimal(seconds)) s, \(sync.movedBytes) bytes of data sent\(same)"
        log(.info, summary)
        link.lastSyncSummary = summary
        session!.resync = nil
        state.replication = .established
        _ = try? state.apply(.peer(role: state.peerRole, disk: .upToDate))
        metadata.superblock.generation.clearBitmapUUID()
        metadata.superblock.flags.remove(.crashedPrimary)
        commitSuperblock()
        // The target adopts these generations when it sees syncDone: send them first.
        sendState()
        send(.syncDone(blocks: blocks))
        unfenceAfterResync()
        becomePrimaryIfPending()
    }

    // MARK: rate control and pause

    /// Every tick: the SyncSource's controller decides what may be sent next; both sides sample progress.
    mutating func resyncTick() {
        let busy = counters.applicationRequests != counters.applicationRequestsAtLastTick
        counters.applicationRequestsAtLastTick = counters.applicationRequests
        guard var sync = session?.resync else { return }
        sync.samples.append((at: now, done: sync.doneBlocks))
        if sync.samples.count > 330 { sync.samples.removeFirst(sync.samples.count - 300) }
        if sync.source, var controller = sync.controller, !syncPaused {
            let allowed = controller.tick(acknowledged: sync.acknowledgedSinceTick, inFlight: sync.inFlightBytes, applicationBusy: busy)
            sync.controller = controller
            sync.acknowledgedSinceTick = 0
            // Unused allowance does not pile up beyond two ticks' worth.
            sync.credit = min(sync.credit + allowed, 2 * max(allowed, Int(Geometry.blockSize)))
        }
        session!.resync = sync
        if sync.source { pumpResync() }
    }

    var syncPaused: Bool { link.userPausedSync || session?.peerPausedSync == true }

    /// The replication state a running sync shows, paused or not.
    mutating func updateSyncReplicationState() {
        guard let sync = session?.resync else { return }
        let paused = syncPaused
        if paused, sync.pausedSince == nil {
            session!.resync!.pausedSince = now
        } else if !paused, let since = sync.pausedSince {
            session!.resync!.pausedNanoseconds += now - min(now, since)
            session!.resync!.pausedSince = nil
        }
        state.replication = sync.source ? (paused ? .pausedSyncSource : .syncSource) : (paused ? .pausedSyncTarget : .syncTarget)
    }

    mutating func receiveSyncPause(_ paused: Bool) {
        session?.peerPausedSync = paused
        log(.info, paused ? "the peer's operator paused the resync" : "the peer's operator resumed the resync")
        updateSyncReplicationState()
        if !paused { pumpResync() }
    }

    mutating func receiveResyncRequest(senderIsSource: Bool, full: Bool) {
        guard state.hasDisk && state.peerHasDisk else {
            log(.warning, "the peer asked for a resync, but \(state.hasDisk ? "the peer" : "this node") has no disk; ignored")
            return
        }
        guard session?.resync == nil else {
            log(.warning, "the peer asked for a resync while one is running; ignored")
            return
        }
        log(.info, "the peer's operator asked for a \(full ? "full " : "")resync; this node becomes \(senderIsSource ? "SyncTarget" : "SyncSource")")
        beginSync(source: !senderIsSource, full: full)
    }
}
