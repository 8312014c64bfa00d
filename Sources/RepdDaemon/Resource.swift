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
import RepdEngine
import RepdNet
import RepdStorage
import RepdSystem

/// A resource running on this node: the thin driver around its replication engine (`Engine`, in
/// RepdEngine). It owns the disk, the metadata store, the NBD export, the peer link and the control
/// socket, feeds what happens to the engine and carries out what the engine asks (Driver.swift).
public final class Resource: @unchecked Sendable {
    /// The resource file as it runs: read at `up`, replaced by `repd adjust` (Resource+Adjust.swift).
    public var config: ResolvedResource { configBox.withLockedValue { $0 } }
    let configBox: NIOLockedValueBox<ResolvedResource>
    public let node: String
    public let run: RunDirectory
    let logger: Logger
    /// Metadata writes run here, one after the other, never under the state lock.
    let metadataQueue = DispatchQueue(label: "repd.metadata")
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
    /// The fencing path's listener (`fence-address`), if configured.
    var fenceServer: FenceServer? {
        get { fenceBox.withLockedValue { $0 } }
        set { fenceBox.withLockedValue { $0 = newValue } }
    }
    private let fenceBox = NIOLockedValueBox<FenceServer?>(nil)
    /// The engine and what waits for its answers: the one lock.
    let state: NIOLockedValueBox<DriverState>
    /// The node's block device for the resource's `device` path (Docs/BlockDevice.md).
    let attachment: DeviceAttachment
    /// What opening the disk noticed (a disk that grew while down), for `repd up` to print.
    let diskNotes: [String]
    private let stopSignal = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
    private let stopRequested = NIOLockedValueBox(false)

    /// Opens the disk and metadata and prepares the engine; serves nothing yet.
    public init(config: ResolvedResource, node: String, runDirectory: String, logger: Logger) throws {
        self.configBox = NIOLockedValueBox(config)
        self.node = node
        self.run = RunDirectory(path: runDirectory, resource: config.name)
        self.logger = logger
        self.attachment = DeviceAttachment(resource: config.name, node: node, host: config.local, run: run, logger: logger)
        // A disk that failed stays out of use (not at `up`, not after a restart) until `repd attach`.
        var opened: BackingDisk.Opened?
        var failure: DiskFailure?
        var diskNotes: [String] = []
        let usable: UInt64
        if let record = DiskFailureRecord.load(run) {
            failure = record.failure
            usable = record.usableSize
        } else {
            let found = try BackingDisk.open(config)
            usable = found.usableSize
            if let grown = found.disk.metadata.grownUsableSize {
                diskNotes.append("\(config.local.disk) grew to \(grown) usable bytes while \(config.name) was down; the metadata describes "
                    + "\(usable), which stays replicated until `repd resize \(config.name)` on both nodes")
            }
            if found.superblock.flags.contains(.diskFailed) {
                failure = DiskFailure(cause: .ioError, at: 0, detail: "the metadata of \(config.local.disk) records that it failed (flag disk-failed)")
            } else {
                opened = found
            }
        }
        diskNotes.forEach { logger.warning("\($0)") }
        self.diskNotes = diskNotes
        if let failure {
            logger.warning("the disk \(config.local.disk) failed before (\(failure.summary)); it stays out of use until `repd attach \(config.name)`: starting Diskless")
        }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        self.loops = Array(group.makeIterator())
        self.threadPool = NIOThreadPool(numberOfThreads: 8)
        let configuration = EngineConfiguration(resolved: config, node: node, usableSize: usable, runDirectory: runDirectory)
        if configuration.activityLogExtents != config.disk.alExtents {
            logger.warning("al-extents \(config.disk.alExtents) is outside \(Self.minimumActivityLogExtents)...\(Self.maximumActivityLogExtents); using \(configuration.activityLogExtents)")
        }
        let engine = opened.map {
            Engine(configuration: configuration, superblock: $0.superblock, bitmap: $0.bitmap, activityLogReplay: $0.replay,
                   seed: ProcessSupport.randomUInt64())
        } ?? Engine(configuration: configuration, disklessBecause: failure, seed: ProcessSupport.randomUInt64())
        self.state = NIOLockedValueBox(DriverState(engine: engine, backing: opened?.disk))
    }

    /// The largest NBD request (32 MiB) touches 9 extents; a smaller table could never hold one.
    static let minimumActivityLogExtents = 16
    /// The ring's context can describe at most 64 × 888 slots (Docs/OnDiskFormat.md section 3).
    static let maximumActivityLogExtents = Geometry.activityLogSlotCount * ActivityLogTransaction.maximumContextEntries

    /// Starts serving: records that the resource is up, binds the export and the control socket.
    public func start() async throws {
        // TLS files first: a missing or wrong one stops `up` before anything is bound.
        let peerTLS = try Self.linkTLS(config)
        let nbdTLS = try Self.nbdTLS(config)
        threadPool.start()
        try recordUp()
        // Clients on one event loop, the peer link on the other: under load both cores move data.
        nbd = NBDServer(group: clientLoop, backend: self)
        control = ControlServer(group: group) { [weak self] request in
            guard let self else { return ControlReply(ok: false, message: "resource is shutting down") }
            return await self.handle(request)
        }
        try await publishSockets()
        if let address = config.local.nbdAddress {
            try await nbd.listen(host: address.host, port: address.port, tls: nbdTLS)
        }
        try await attachment.attach(server: nbd, export: exports()[0], writable: state.withLockedValue { $0.engine.state.role == .primary })
        let s = state.withLockedValue { $0.engine.state }
        let usable = state.withLockedValue { $0.engine.configuration.usableSize }
        logger.info("\(s.hasDisk ? "attached \(config.local.disk)" : "no disk") (\(usable) usable bytes), disk \(s.disk.rawValue), role \(s.role.rawValue); exporting \(run.nbdURI)")
        for warning in Self.configurationWarnings(config) { logger.warning("\(warning)") }
        group.next().scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { [weak self] task in
            guard let self else { task.cancel(); return }
            self.feed(.tick(now: ProcessSupport.monotonicNanoseconds(), unixTime: ProcessSupport.unixTime()))
        }
        if config.peer != nil {
            try await startPeerLink(tls: peerTLS)
        } else {
            logger.info("no peer is configured: running alone")
        }
    }

    /// The control socket (root only, 0600) and the NBD unix socket (0600, or 0660 with
    /// `nbd-socket-group`), each bound under a temporary name and renamed once its mode is set,
    /// whatever the umask the daemon started with.
    private func publishSockets() async throws {
        var group: gid_t?
        if let name = config.local.nbdSocketGroup {
            guard let id = ProcessSupport.groupID(name) else {
                throw ResourceError("nbd-socket-group \(name): no such group on this node")
            }
            group = id
            if try ProcessSupport.allowTraversal(run.path) {
                logger.info("run dir \(run.path): search permission added for group and others (nbd-socket-group \(name) reaches the NBD socket through it)")
            }
        }
        try await control.listen(unixSocket: run.controlSocket + ".new")
        try ProcessSupport.publishSocket(run.controlSocket + ".new", as: run.controlSocket, mode: 0o600)
        try await nbd.listen(unixSocket: run.nbdSocket + ".new")
        try ProcessSupport.publishSocket(run.nbdSocket + ".new", as: run.nbdSocket, mode: group == nil ? 0o600 : 0o660, group: group)
    }

    /// The engine's first actions, carried out before anything is served: the metadata says the
    /// resource is up (its write must succeed, or the resource does not start).
    private func recordUp() throws {
        var followUps: [Event] = []
        let actions = state.withLockedValue { s in
            Self.resolve(s.engine.start(now: ProcessSupport.monotonicNanoseconds(), unixTime: ProcessSupport.unixTime()), &s)
        }
        for case .io(.persist(let token, let write), let disk) in actions {
            if let failure = Self.write(write, to: disk.metadata) {
                throw ResourceError("cannot write the metadata: \(failure)")
            }
            followUps.append(.persisted(token, nil))
        }
        let others = actions.filter { if case .io(.persist, _) = $0 { return false } else { return true } }
        execute(others, followUps: &followUps)
        for event in followUps { feed(event) }
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
            ProcessSupport.ignoreSignal(sig)
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
        feed(.beginShutdown)
        await nbd?.stopListening()
        let deadline = ProcessSupport.monotonicNanoseconds() + 30_000_000_000
        while state.withLockedValue({ $0.engine.inFlight }) > 0 && ProcessSupport.monotonicNanoseconds() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        await nbd?.closeClients()
        await link?.stop()
        await fenceServer?.stop()
        // Metadata writes already queued go first; then the data, then the final metadata.
        metadataQueue.sync {}
        let (backing, final, inFlight) = state.withLockedValue { s in (s.backing, s.engine.stop(), s.engine.inFlight) }
        if inFlight > 0 {
            logger.warning("\(inFlight) requests did not drain: the activity log is kept, as after a crash")
        }
        if let backing {
            if let failure = backing.data.sync() ?? metadataQueue.sync(execute: { Self.write(final, to: backing.metadata) }) {
                logger.error("could not persist metadata at shutdown: \(failure)")
            } else {
                logger.info("metadata flushed; resource down")
            }
        } else {
            logger.info("resource down (Diskless: no metadata to write)")
        }
        await control?.stop()
        try? await threadPool.shutdownGracefully()
        ProcessSupport.removeFile(run.nbdSocket)
        ProcessSupport.removeFile(run.controlSocket)
        // The disk is closed once nothing holds it any more.
        state.withLockedValue { $0.backing = nil }
        try? await group.shutdownGracefully()
    }
}

struct ResourceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Resource {
    /// What `repd up` prints besides the result: the configuration's risky choices (once, also in
    /// the log) and what attaching the block device noticed.
    var warnings: [String] { Self.configurationWarnings(config) + diskNotes + attachment.warnings }

    static func configurationWarnings(_ config: ResolvedResource) -> [String] {
        var warnings: [String] = []
        let fencing = config.disk.fencing
        if fencing != "dont-care" && config.handlers["fence-peer"] == nil {
            warnings.append("fencing \(fencing) without a fence-peer handler: "
                + (fencing == "resource-and-stonith" ? "I/O freezes when the link breaks and stays frozen until `repd resume-io`"
                    : "nothing outdates the peer when the link breaks")
                + "; add `fence-peer \"repd fence-peer-outdate\";` (with a fence-address per node) or your cluster's handler (Docs/Fencing.md)")
        }
        if config.net.allowTwoPrimaries && fencing != "resource-and-stonith" {
            warnings.append("allow-two-primaries without fencing resource-and-stonith: when the link breaks both Primaries go on writing "
                + "and the data diverges (a split brain); a cluster file system needs resource-and-stonith (Docs/Fencing.md)")
        }
        return warnings
    }
}
