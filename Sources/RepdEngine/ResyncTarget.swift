import NIOCore
import PeerProtocol
import RepdCore

/// The SyncTarget's side of a resync: it writes what the source sends, acknowledges it, and
/// becomes UpToDate when the source says it is done.
extension Engine {
    /// The Inconsistent flag is on disk: messages that waited may now be applied, in order.
    mutating func syncTargetReady(_ connection: ConnectionID, _ failure: IOFailure?) {
        guard session?.connection == connection, let deferred = session?.deferredMessages else { return }
        session!.deferredMessages = nil
        if let failure {
            log(.error, "cannot record the disk as Inconsistent before the resync: \(failure); dropping the connection")
            emit(.dropConnection(connection, reason: "metadata write failed before the resync"))
            return
        }
        for message in deferred {
            guard session?.connection == connection else { return }
            peerMessage(message)
        }
    }

    mutating func receiveSyncStart(totalBlocks reported: UInt64, full: Bool) {
        // A resync the source began before it heard that this disk went: nothing to receive it.
        guard state.hasDisk else { return }
        // Never more than this disk has (the count comes from the wire).
        let totalBlocks = min(reported, configuration.usableSize / Geometry.blockSize)
        log(.info, "resync from the peer starting: \(totalBlocks) blocks of 4 KiB\(full ? " (full sync)" : "")")
        if session?.resync == nil {
            var progress = ResyncState(source: false, full: full, startedAt: now)
            progress.totalBlocks = totalBlocks
            session?.resync = progress
        } else {
            session?.resync?.totalBlocks = totalBlocks
        }
    }

    mutating func receiveSyncData(offset: UInt64, payload: ByteBuffer) {
        guard payload.readableBytes > 0, payload.readableBytes <= PeerWire.maximumPayload else {
            log(.error, "the peer sent resync data of \(payload.readableBytes) bytes; refused")
            return
        }
        let write = PeerWrite(sequence: 0, offset: offset, length: UInt32(payload.readableBytes), kind: .data, payload: payload)
        receiveWrite(write, origin: .resync)
    }

    mutating func finishSyncTarget(blocks: UInt64) {
        // (A node without a disk does not finish anything: found by the simulator, seed 2895.)
        guard let report = session?.report, state.hasDisk, session?.resync != nil || state.disk == .inconsistent else { return }
        let sync = session?.resync
        let seconds = sync.map { Double(now - min(now, $0.startedAt)) / 1e9 } ?? 0
        let moved = sync?.movedBytes ?? 0
        let summary = "resync finished as SyncTarget: \(blocks) blocks (\(Geometry.kibibytes(ofBlocks: blocks)) KiB) in \(oneDecimal(seconds)) s, \(moved) bytes of data received; disk UpToDate"
        log(.info, summary)
        link.lastSyncSummary = summary
        session!.resync = nil
        state.replication = .established
        metadata.clearBitmap()
        _ = try? state.apply(.attach(.upToDate))
        metadata.superblock.generation.adoptFromSyncSource(report.generation)
        metadata.superblock.flags.formUnion([.consistent, .wasUpToDate])
        metadata.superblock.flags.remove(.crashedPrimary)
        commitSuperblock()
        sendState()
        runHandler("after-resync-target")
        becomePrimaryIfPending()
    }
}
