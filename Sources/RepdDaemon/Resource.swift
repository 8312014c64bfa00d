import ControlProtocol
import Dispatch
import Logging
import NBDProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerProtocol
import RepdConfig
import RepdCore
import RepdNet
import RepdStorage
import RepdSystem

/// A resource running on this node: its disk, metadata, state, NBD export and control socket.
///
/// The NBD server calls `execute` from its event loops; disk I/O runs on a thread pool so
/// many requests proceed at once. Mutable state sits behind one lock and is never held
/// across I/O.
public final class Resource: @unchecked Sendable {
    public let config: ResolvedResource
    public let node: String
    public let run: RunDirectory
    let logger: Logger
    let data: BlockFile
    let metadata: MetadataStore
    let size: UInt64
    let group: MultiThreadedEventLoopGroup
    /// The event loop of the NBD clients and control socket, and the one of the peer link.
    var clientLoop: any EventLoop { loops[0] }
    var peerLoop: any EventLoop { loops[loops.count > 1 ? 1 : 0] }
    private let loops: [any EventLoop]
    let threadPool: NIOThreadPool
    private(set) var nbd: NBDServer!
    private var control: ControlServer!
    var link: PeerLink? {
        get { linkBox.withLockedValue { $0 } }
        set { linkBox.withLockedValue { $0 = newValue } }
    }
    private let linkBox = NIOLockedValueBox<PeerLink?>(nil)
    /// The node's block device for the resource's `device` path (Docs/BlockDevice.md).
    let attachment: DeviceAttachment

    struct Mutable {
        var state = NodeState()
        var superblock: Superblock
        var bitmap: DirtyBitmap
        var dirtyPages = Set<Int>()
        var shuttingDown = false
        var inFlight = 0
        var pendingWrites = 0
        var readBytes: UInt64 = 0
        var writtenBytes: UInt64 = 0
        var sentBytes: UInt64 = 0
        var receivedBytes: UInt64 = 0
        var bitmapWrites: UInt64 = 0
        /// The activity log (hot 4 MiB extents) and the writes waiting for it to record theirs.
        var al: ActivityLog
        var alWaiting: [WriteRequest] = []
        var alWrites: UInt64 = 0
        /// `repd pause-sync` on this node: resyncs stay paused until `resume-sync`.
        var userPausedSync = false
        var digestJobs: [UInt64: DigestJob] = [:]
        /// Application requests since the resync controller's last tick (for c-min-rate).
        var applicationRequests: UInt64 = 0
        /// The last resync or verify that ended, for status.
        var lastSyncSummary: String?
        /// `repd connect --discard-my-data`: drop our changes if the next connection finds a split brain.
        var discardMyData = false
        /// Why the node is StandAlone after a split brain (or rr-conflict), until `repd connect`.
        var splitBrain: String?
        /// Whether that StandAlone state is a split brain (not an rr-conflict).
        var standAloneAfterSplitBrain = false
        /// The peer's state as last reported (for `connect --dry-run`).
        var lastPeerReport: PeerStateReport?
        /// The last online verify this node ran: KiB found out of sync, when (Unix seconds).
        var lastVerify: (outOfSyncKiB: UInt64, at: UInt64)?
        /// SyncTarget: blocks requested from the source for applications, by request id.
        var pulls: [UInt64: Pull] = [:]
        var pullRequests: [UInt64: (pull: UInt64, range: Range<UInt64>)] = [:]
        var nextPullID: UInt64 = 1
        /// SyncSource: the target's requests being read, by tracker id.
        var pullServes: [UInt64: PullServe] = [:]
        /// The size clients see: the local usable size, or the peer's if smaller.
        var exportSize: UInt64
        var tracker = WriteConflictTracker()
        var localWrites: [UInt64: LocalWrite] = [:]
        var peerApplies: [UInt64: PeerApply] = [:]
        var peer: PeerSession?
        /// Why the last connection attempt was refused or the link dropped, for status.
        var linkMessage: String?
        var conflicts: UInt64 = 0
        /// `become-primary-on` names this node and a peer is configured: promote once connected and in sync.
        var pendingBecomePrimary = false

        /// Writes go to the peer too: connected, and the peer has a disk.
        var replicating: Bool {
            guard let peer, peer.report != nil, state.connection == .connected else { return false }
            return state.peerDisk >= .inconsistent && state.peerDisk != .unknown
        }

        mutating func markOutOfSync(_ range: Range<UInt64>) {
            dirtyPages.formUnion(bitmap.markOutOfSync(byteRange: range))
        }

        mutating func markInSync(_ range: Range<UInt64>) {
            dirtyPages.formUnion(bitmap.markInSync(byteRange: range))
        }
    }
    let mutable: NIOLockedValueBox<Mutable>
    private let stopSignal = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
    private let stopRequested = NIOLockedValueBox(false)

    /// Opens the disk and metadata and prepares the state; serves nothing yet.
    public init(config: ResolvedResource, node: String, runDirectory: String, logger: Logger) throws {
        self.config = config
        self.node = node
        self.run = RunDirectory(path: runDirectory, resource: config.name)
        self.logger = logger
        self.attachment = DeviceAttachment(resource: config.name, node: node, host: config.local, run: run, logger: logger)
        let data = try BlockFile.open(config.local.disk)
        let metadata: MetadataStore
        let superblock: Superblock
        do {
            metadata = try MetadataStore.locate(metaDisk: config.local.metaDisk, data: data, create: false)
            superblock = try metadata.readSuperblock(expectedResource: config.name)
        } catch {
            data.close()
            throw error
        }
        var bitmap = try metadata.readBitmap()
        // The activity log: after a stop without `repd down`, every extent it holds may differ from the
        // peer and is marked out of sync.
        // Slots of any table size the ring can describe (al-extents may have changed since create-md).
        let replay = ActivityLog.replay(try metadata.readActivityLog(), slotCount: Resource.maximumActivityLogExtents)
        var recoveredExtents: [UInt32] = []
        if !superblock.flags.contains(.activityLogClean) {
            recoveredExtents = replay.extents.filter { UInt64($0) * Geometry.activityLogExtentSize < superblock.layout.usableSize }
            for extent in recoveredExtents {
                _ = bitmap.markOutOfSync(byteRange: ActivityLog.byteRange(ofExtent: extent))
            }
        }
        self.data = data
        self.metadata = metadata
        var usable = superblock.layout.usableSize
        if let limit = config.disk.sizeBytes, limit < usable { usable = limit - limit % Geometry.blockSize }
        self.size = usable
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        self.loops = Array(group.makeIterator())
        self.threadPool = NIOThreadPool(numberOfThreads: 8)
        var m = Mutable(
            superblock: superblock, bitmap: bitmap,
            al: ActivityLog(slotCount: min(max(config.disk.alExtents, Resource.minimumActivityLogExtents), Resource.maximumActivityLogExtents), nextTransactionNumber: replay.lastTransactionNumber + 1),
            exportSize: usable)
        if !recoveredExtents.isEmpty {
            m.dirtyPages.formUnion(0..<bitmap.pageCount)
            logger.warning("unclean stop: the activity log holds \(recoveredExtents.count) extents of 4 MiB; marked out of sync (\(bitmap.outOfSyncCount) blocks out of sync in all)")
        }
        if m.al.slotCount != config.disk.alExtents {
            logger.warning("al-extents \(config.disk.alExtents) is outside \(Resource.minimumActivityLogExtents)...\(Resource.maximumActivityLogExtents); using \(m.al.slotCount)")
        }
        if replay.damagedBlocks > 0 {
            logger.warning("\(replay.damagedBlocks) damaged activity-log blocks were ignored")
        }
        m.state.allowTwoPrimaries = config.net.allowTwoPrimaries
        m.state.connection = config.peer == nil ? .standAlone : .connecting
        let flags = superblock.flags
        let disk: DiskState
        if !flags.contains(.consistent) {
            disk = .inconsistent
        } else if flags.contains(.wasUpToDate) {
            disk = .consistent
        } else {
            disk = .outdated
        }
        _ = try? m.state.apply(.attach(disk))
        self.mutable = NIOLockedValueBox(m)
    }

    /// Starts serving: records that the resource is up, binds the export and the control socket.
    public func start() async throws {
        threadPool.start()
        try recordUp()
        // Clients on one event loop, the peer link on the other: under load both cores move data.
        nbd = NBDServer(group: clientLoop, backend: self)
        control = ControlServer(group: group) { [weak self] request in
            guard let self else { return ControlReply(ok: false, message: "resource is shutting down") }
            return await self.handle(request)
        }
        try await control.listen(unixSocket: run.controlSocket)
        try await nbd.listen(unixSocket: run.nbdSocket)
        if let address = config.local.nbdAddress {
            try await nbd.listen(host: address.host, port: address.port)
        }
        try await attachment.attach(server: nbd, export: exports()[0], writable: mutable.withLockedValue { $0.state.role == .primary })
        let s = mutable.withLockedValue { $0.state }
        logger.info("attached \(config.local.disk) (\(size) usable bytes), disk \(s.disk.rawValue), role \(s.role.rawValue); exporting \(run.nbdURI)")
        // The bitmap is written lazily: the activity log covers the extents whose bits are not on disk yet.
        group.next().scheduleRepeatedTask(initialDelay: .seconds(2), delay: .seconds(2)) { [weak self] task in
            guard let self else { task.cancel(); return }
            if !self.flushBitmapLazily() { task.cancel() }
        }
        if config.peer != nil {
            try await startPeerLink()
        } else {
            logger.info("no peer is configured: running alone")
        }
        let become = config.startup.becomePrimaryOn
        if become.contains("both") || become.contains(node) {
            if config.peer == nil {
                becomePrimaryAtStartup(reason: "become-primary-on \(become.joined(separator: " "))")
            } else {
                // As DRBD: wait for the peer first, so that two nodes restarting together do not
                // each promote alone and create a split brain.
                mutable.withLockedValue { $0.pendingBecomePrimary = true }
                let wait = config.startup.wfcTimeoutSeconds
                let fallback = wait > 0 ? " (or alone after wfc-timeout \(wait) s)" : ""
                logger.info("become-primary-on: will become Primary once connected and in sync\(fallback)")
                if wait > 0 {
                    group.next().scheduleTask(in: .seconds(Int64(wait))) { [weak self] in
                        guard let self else { return }
                        let still = self.mutable.withLockedValue { m -> Bool in
                            defer { m.pendingBecomePrimary = false }
                            return m.pendingBecomePrimary
                        }
                        if still { self.becomePrimaryAtStartup(reason: "wfc-timeout expired without the peer") }
                    }
                }
            }
        }
    }

    /// The largest NBD request (32 MiB) touches 9 extents; a smaller table could never hold one.
    static let minimumActivityLogExtents = 16
    /// The ring's context can describe at most 64 × 888 slots (Docs/OnDiskFormat.md section 3).
    static let maximumActivityLogExtents = Geometry.activityLogSlotCount * ActivityLogTransaction.maximumContextEntries

    /// Writes the changed bitmap pages (no sync). Returns false once the resource is going down.
    func flushBitmapLazily() -> Bool {
        mutable.withLockedValue { m in
            guard !m.shuttingDown else { return false }
            guard !m.dirtyPages.isEmpty else { return true }
            do {
                try metadata.writeBitmapPages(m.bitmap, pages: m.dirtyPages.sorted())
                m.bitmapWrites += UInt64(m.dirtyPages.count)
                m.dirtyPages.removeAll()
            } catch {
                logger.error("cannot write the bitmap: \(error)")
            }
            return true
        }
    }

    func becomePrimaryAtStartup(reason: String) {
        do {
            try promote(force: false)
            logger.info("became Primary at startup (\(reason))")
        } catch {
            logger.warning("become-primary-on: \(error)")
        }
    }

    /// The primary indicator of a previous run still set means that run ended without `down`.
    private func recordUp() throws {
        try mutable.withLockedValue { m in
            var sb = m.superblock
            if sb.flags.contains(.primaryIndicator) {
                sb.flags.insert(.crashedPrimary)
                logger.warning("the metadata says this node was Primary when it last stopped without `repd down`: marked crashed-primary")
            }
            // Recovered bits first, then a fresh activity log (the whole, empty table), then the flags.
            try metadata.writeBitmapPages(m.bitmap, pages: m.dirtyPages.sorted())
            m.bitmapWrites += UInt64(m.dirtyPages.count)
            m.dirtyPages.removeAll()
            try metadata.sync()
            for (slot, transaction) in m.al.fullTableTransactions() {
                try metadata.writeActivityLog(transaction, ringSlot: slot)
                m.alWrites += 1
            }
            sb.flags.remove(.activityLogClean)
            sb.updateCounter += 1
            try metadata.writeSuperblock(sb)
            m.superblock = sb
        }
    }

    /// Blocks until `down` or a termination signal, then shuts down cleanly.
    public func runUntilStopped() async {
        let signals = installSignalHandlers()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let already = stopRequested.withLockedValue { requested in
                if !requested { stopSignal.withLockedValue { $0 = continuation } }
                return requested
            }
            if already { continuation.resume() }
        }
        signals.forEach { $0.cancel() }
        await shutdown()
    }

    func requestStop() {
        stopRequested.withLockedValue { $0 = true }
        let continuation = stopSignal.withLockedValue { c in defer { c = nil }; return c }
        continuation?.resume()
    }

    private func installSignalHandlers() -> [any DispatchSourceSignal] {
        [SIGTERM, SIGINT].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                self?.logger.info("signal \(sig): shutting down")
                self?.requestStop()
            }
            source.resume()
            return source
        }
    }

    /// Stops taking requests, lets in-flight I/O finish, and persists the metadata.
    func shutdown() async {
        await attachment.detach()
        logger.info("shutting down: no new requests, draining in-flight I/O")
        mutable.withLockedValue { $0.shuttingDown = true }
        await nbd.stopListening()
        let deadline = ProcessSupport.monotonicNanoseconds() + 30_000_000_000
        while mutable.withLockedValue({ $0.inFlight }) > 0 && ProcessSupport.monotonicNanoseconds() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        await nbd.closeClients()
        await link?.stop()
        do {
            try data.sync()
            try mutable.withLockedValue { m in
                try metadata.writeBitmapPages(m.bitmap, pages: m.dirtyPages.sorted())
                m.bitmapWrites += UInt64(m.dirtyPages.count)
                m.dirtyPages.removeAll()
                // The bits are durable before the superblock says the activity log is not needed.
                try metadata.sync()
                var sb = m.superblock
                let drained = m.inFlight == 0
                if drained {
                    sb.flags.remove(.primaryIndicator)
                    sb.flags.insert(.activityLogClean)
                } else {
                    logger.warning("\(m.inFlight) requests did not drain: the activity log is kept, as after a crash")
                }
                sb.updateCounter += 1
                try metadata.writeSuperblock(sb)
                m.superblock = sb
            }
            logger.info("metadata flushed; resource down")
        } catch {
            logger.error("could not persist metadata at shutdown: \(error)")
        }
        await control.stop()
        try? await threadPool.shutdownGracefully()
        ProcessSupport.removeFile(run.nbdSocket)
        ProcessSupport.removeFile(run.controlSocket)
        data.close()
        metadata.close()
        try? await group.shutdownGracefully()
    }
}
