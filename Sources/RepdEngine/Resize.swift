import RepdCore

/// `repd resize`: the backing disks grew; the replicated size follows once both nodes took theirs.
///
/// Each node takes its own grown disk: its bitmap grows (the new blocks out of sync, unless
/// `--assume-clean`), the superblock gets the new layout, and both are made durable before
/// anything else changes. The state report then tells the peer the new size. The replicated size
/// (`exportSize`) is the smaller of the two disks and grows only while connected, once both have
/// grown: a node alone keeps the size it agreed on, so that no write lands where the peer has no
/// room. Once it grew, the UpToDate node that may write (the Primary, or the connection's leader
/// when both are Secondary) resyncs the new area to the other, unless it was assumed clean.
extension Engine {
    mutating func resize(_ id: CommandID, layout: MetadataLayout, assumeClean: Bool) {
        let old = configuration.usableSize
        guard diskAttached else { return reply(id, false, "no disk is attached") }
        guard resizeCommand == nil else { return reply(id, false, "a resize is in progress") }
        guard layout.usableSize > old else {
            return reply(id, false, layout.usableSize == old
                ? "nothing to resize: the disk gives \(old) bytes, as before"
                : "shrinking is not supported online: the disk gives \(layout.usableSize) bytes, the resource uses \(old)")
        }
        if session?.resync != nil || session?.verify != nil {
            return reply(id, false, "a resync or verify is running; resize when it has finished")
        }
        let oldBlocks = metadata.bitmap.blockCount
        metadata.dirtyPages.formUnion(metadata.bitmap.grow(to: layout.blockCount))
        if !assumeClean {
            metadata.markOutOfSync(UInt64(oldBlocks) * Geometry.blockSize..<layout.usableSize)
        }
        metadata.superblock.layout = layout
        configuration.usableSize = layout.usableSize
        resizeCommand = id
        log(.info, "resize: the disk grew from \(old) to \(layout.usableSize) bytes"
            + (assumeClean ? " (--assume-clean: the new area is taken as in sync)" : "; the new area is marked out of sync"))
        // The bitmap pages (the new ones included) are synced before the superblock that makes
        // them part of the layout is written: a crash leaves the old layout, or the new one whole.
        var write = metadata.takeDirtyPages(sync: true)
        write.superblock = metadata.nextSuperblock()
        emitPersist(write, then: .resized(id))
    }

    mutating func resizePersisted(_ id: CommandID, _ failure: IOFailure?) {
        resizeCommand = nil
        if let failure { return reply(id, false, "the grown metadata could not be written: \(failure)") }
        sendState()
        let before = exportSize
        growExportIfAgreed()
        if exportSize > before {
            reply(id, true, "resized: \(exportSize) bytes replicated (was \(before))")
        } else if configuration.peerNode != nil {
            let peer = session?.report.map { "\($0.usableSize) bytes" } ?? "not connected"
            reply(id, true, "this disk now gives \(configuration.usableSize) bytes; the replicated size stays \(exportSize) bytes "
                + "until the peer's disk has grown too (peer: \(peer)); run `repd resize \(configuration.resource)` there")
        } else {
            reply(id, true, "resized: \(exportSize) bytes")
        }
    }

    /// The replicated size becomes the smaller disk's, when that is larger than now: connected
    /// (both sizes known), or without a peer at all.
    mutating func growExportIfAgreed() {
        let agreed: UInt64
        if configuration.peerNode == nil {
            agreed = configuration.usableSize
        } else if state.connection == .connected, let report = session?.report {
            agreed = min(configuration.usableSize, report.usableSize)
        } else {
            return
        }
        guard agreed > exportSize else { return }
        log(.info, "the replicated size grows from \(exportSize) to \(agreed) bytes")
        let old = exportSize
        exportSize = agreed
        emit(.exportSizeChanged(agreed))
        resyncGrownArea(from: old)
    }

    /// The node that may write resyncs the new area to the other (its bits are set unless
    /// `--assume-clean`); the other node waits for it.
    private mutating func resyncGrownArea(from old: UInt64) {
        guard configuration.peerNode != nil, let session, session.resync == nil, session.verify == nil,
              state.replication == .established, state.disk == .upToDate, state.peerHasDisk, state.peerRole != .primary else { return }
        let writer = state.role == .primary || session.localResolves
        guard writer, metadata.bitmap.outOfSyncCount > 0 else { return }
        log(.info, "the replicated size grew by \(exportSize - old) bytes: resync of the \(metadata.bitmap.outOfSyncCount) blocks marked out of sync to \(peerName)")
        send(.resyncRequest(senderIsSource: true, full: false))
        beginSync(source: true, full: false)
    }
}
