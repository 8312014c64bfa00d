import ControlProtocol
import Logging
import NBDProtocol
import NIOConcurrencyHelpers
import RepdConfig
import RepdNet
import RepdSystem

/// The resource's block device on this node: `device /dev/drbd1;` made real (issue 15).
///
/// At `up` the export is attached as a kernel block device and the configured path is made a
/// link to it, plus `/dev/repd/by-res/RES`:
/// - **kernel nbd** where the kernel has the nbd driver: repd hands the driver one end of each of
///   a few socketpairs (generic netlink NBD_CMD_CONNECT, with the export's size, block size and
///   flags) and serves the other ends itself, in the transmission phase;
/// - **nbdfuse+loop** otherwise: repd runs `nbdfuse` on its own export (a FUSE file under the run
///   directory) and binds a loop device to that file.
/// (ublk is not driven yet: Docs/BlockDevice.md says why.)
///
/// A Secondary's device is attached but read-only (BLKROSET): the path exists for as long as the
/// resource is up, whatever the role, so boot ordering and LVM can rely on it, and a role change
/// never has to tear down a device something may hold. `secondary` and `down` are refused while
/// the device is mounted, held by a stacked device (LVM, dm) or used as swap, unless forced.
///
/// What was attached is written to `RUN/RES.device`, so that the next `up` (or `down` of a
/// resource whose daemon died) finds and undoes what a crash left behind.
final class DeviceAttachment: @unchecked Sendable {
    enum Method: String, Sendable {
        case kernelNBD = "kernel nbd"
        case fuseLoop = "nbdfuse+loop"
    }

    /// What is attached now.
    struct Attached {
        var method: Method
        /// `/dev/nbd0`, `/dev/loop3`.
        var target: String
        /// `nbd0`, `loop3`.
        var kernelName: String
        var links: [String]
        var nbdIndex: Int?
        var loop: LoopDevice?
        var nbdfuse: SupervisedProcess?
        var readOnly: Bool
        /// The device's discard limit before repd lowered it, restored at detach (it outlives the attachment).
        var originalDiscardLimit: UInt64? = nil
        /// An in-use nbd device the previous daemon left: the kernel ends of the new sockets, to be
        /// handed over (NBD_CMD_RECONFIGURE) at promotion. A Secondary would refuse the writes the
        /// kernel queued meanwhile, and the file system on it would abort.
        var pendingReconnect: [Int32]? = nil
    }

    /// The kernel keeps queued requests this long after repd's connections died, waiting for a
    /// restarted repd to reconnect (NBD_CMD_RECONFIGURE), before it fails them.
    static let deadConnectionTimeoutSeconds: UInt64 = 60
    /// Logical block size of the device, as DRBD's.
    static let blockSize: UInt32 = 512

    let resource: String
    let node: String
    let host: HostConfig
    let run: RunDirectory
    let logger: Logger
    private let attached = NIOLockedValueBox<Attached?>(nil)
    private let collectedWarnings = NIOLockedValueBox<[String]>([])

    init(resource: String, node: String, host: HostConfig, run: RunDirectory, logger: Logger) {
        self.resource = resource
        self.node = node
        self.host = host
        self.run = run
        self.logger = logger
    }

    /// Messages for the operator from `attach` (the `repd up` command prints them).
    var warnings: [String] { collectedWarnings.withLockedValue { $0 } }

    private func warn(_ message: String) {
        logger.warning("\(message)")
        collectedWarnings.withLockedValue { $0.append(message) }
    }

    /// The backend identifier the kernel shows in `/sys/block/nbdN/backend`.
    var backendIdentifier: String { "repd:\(resource)" }

    /// `/dev/repd/by-res/RES`, as DRBD's udev rules give `/dev/drbd/by-res/RES/0`.
    var byResourceLink: String { "/dev/repd/by-res/\(resource)" }

    // MARK: attach

    /// Attaches the device (nothing with `device none;`). Call once the export listens.
    func attach(server: NBDServer, export: NBDExportInfo, writable: Bool) async throws {
        guard host.wantsDevice else {
            checkLVMSignature()
            logger.info("device none: exporting over NBD only")
            return
        }
        // A device a crashed daemon left in use (mounted) is reconnected, so its users live on.
        let revive = DeviceLeftovers.staleKernelNBDInUse(run: run, resource: resource)
        undoLeftovers()
        // Not while a dead nbd device of ours is still connected: pvs would wait on it.
        if revive == nil { checkLVMSignature() }
        let result: Attached
        if let driver = kernelDriver() {
            result = try await attachKernelNBD(driver: driver, server: server, export: export, writable: writable, reviving: revive)
        } else {
            if ProcessSupport.fileExists("/dev/ublk-control") {
                logger.info("/dev/ublk-control exists, but repd does not drive ublk yet: using nbdfuse+loop")
            }
            result = try attachFuseLoop(export: export, writable: writable)
        }
        attached.withLockedValue { $0 = result }
        saveState(result)
        logger.info("\(describe(result))")
    }

    /// The kernel's nbd driver, loading the module first if it is not loaded; nil if there is none.
    private func attachFuseLoop(export: NBDExportInfo, writable: Bool) throws -> Attached {
        guard let nbdfuse = Command.find("nbdfuse") else {
            throw DeviceError("cannot attach \(host.device): the kernel has no nbd driver and nbdfuse is not installed "
                + "(apt-get install nbdfuse fuse3, or `device none;` to export over NBD only)")
        }
        for needed in ["/dev/fuse", "/dev/loop-control"] where !ProcessSupport.fileExists(needed) {
            throw DeviceError("cannot attach \(host.device): the kernel has no nbd driver and \(needed) is missing "
                + "(`device none;` exports over NBD only)")
        }
        try ProcessSupport.makeDirectory(run.fuseMount)
        ProcessSupport.removeFile(run.fusePIDFile)
        let process = try SupervisedProcess.start(
            [nbdfuse, "-P", run.fusePIDFile, run.fuseFile, run.nbdURI], logPath: run.logFile)
        var result = Attached(method: .fuseLoop, target: "", kernelName: "", links: [], nbdfuse: process, readOnly: false)
        do {
            let deadline = ProcessSupport.monotonicNanoseconds() + 30_000_000_000
            while !(ProcessSupport.fileExists(run.fusePIDFile) && BlockFile.sizeOfFile(run.fuseFile) == export.size) {
                guard process.isRunning else {
                    throw DeviceError("nbdfuse exited before its FUSE file \(run.fuseFile) appeared; see \(run.logFile)")
                }
                guard ProcessSupport.monotonicNanoseconds() < deadline else {
                    throw DeviceError("nbdfuse did not present \(run.fuseFile) (\(export.size) bytes) within 30 s")
                }
                ProcessSupport.sleep(milliseconds: 20)
            }
            // Direct I/O: the loop device reads and writes the FUSE file without a second page cache.
            // No autoclear: after a crash the loop device stays bound (like a dead nbd device stays
            // connected) until the next `up` or `down` undoes it, so that nobody else gets it with
            // the read-only flag a Secondary set (BLKROSET outlives the binding).
            let loop = try LoopDevice.attach(file: run.fuseFile, name: backendIdentifier, blockSize: Self.blockSize, directIO: true, autoclear: false)
            result.loop = loop
            result.target = loop.path
            result.kernelName = "loop\(loop.index)"
            try waitForDevice(loop.path, size: export.size)
            try finish(&result, writable: writable)
        } catch {
            result.loop?.detach()
            removeLinks(result)
            stopFuse(process)
            throw error
        }
        return result
    }

    /// The device node answers with the export's size (bounded).
    func waitForDevice(_ path: String, size: UInt64) throws {
        let deadline = ProcessSupport.monotonicNanoseconds() + 10_000_000_000
        while BlockDevices.size(path) != size {
            guard ProcessSupport.monotonicNanoseconds() < deadline else {
                throw DeviceError("\(path) did not show the export's \(size) bytes within 10 s (it shows \(BlockDevices.size(path).map(String.init) ?? "nothing"))")
            }
            ProcessSupport.sleep(milliseconds: 20)
        }
    }

    /// The largest discard the device passes on in one request. The drivers allow gigabytes (mkfs
    /// discards the whole device at once); a request is admitted only once all the activity-log
    /// extents it touches are hot, so it must stay well within `al-extents` (32 MiB touches at
    /// most 9 extents, as the largest write does).
    static let maximumDiscardBytes: UInt64 = 32 << 20

    /// Read-only flag for the role, discard size, then the links.
    func finish(_ a: inout Attached, writable: Bool) throws {
        if let limit = BlockDevices.discardLimit(of: a.kernelName), limit > Self.maximumDiscardBytes {
            if BlockDevices.setDiscardLimit(of: a.kernelName, bytes: Self.maximumDiscardBytes) {
                a.originalDiscardLimit = limit
            } else {
                logger.warning("cannot limit discards on \(a.target) to \(Self.maximumDiscardBytes) bytes")
            }
        }
        try BlockDevices.setReadOnly(a.target, !writable)
        a.readOnly = !writable
        var links: [String] = []
        if host.device != a.target { links.append(host.device) }
        links.append(byResourceLink)
        for link in links {
            try DeviceLink.create(link, pointingTo: DeviceLink.relativeTarget(from: link, toDevice: a.kernelName))
            a.links.append(link)
        }
    }

    // MARK: roles

    /// After a role change: a Primary's device is writable, a Secondary's read-only. On promotion
    /// the device's cache is dropped first: the peer may have changed the data under it.
    func follow(primary: Bool) {
        guard let a = attached.withLockedValue({ $0 }), a.readOnly == primary else { return }
        if primary, let sockets = a.pendingReconnect, let index = a.nbdIndex {
            do {
                try NBDKernelDriver().reconnect(index: index, sockets: sockets, backend: backendIdentifier)
                logger.warning("reconnected /dev/nbd\(index), which the previous daemon left in use: its users carry on")
            } catch {
                logger.error("cannot reconnect /dev/nbd\(index): \(error)")
            }
            sockets.forEach { ProcessSupport.closeDescriptor($0) }
            attached.withLockedValue { $0?.pendingReconnect = nil }
        }
        do {
            // Drop what the cache holds from before (unless a reconnected user's I/O is in it).
            if primary && a.pendingReconnect == nil { try BlockDevices.flushBuffers(a.target) }
            try BlockDevices.setReadOnly(a.target, !primary)
            attached.withLockedValue { $0?.readOnly = !primary }
            logger.info("device \(a.target) \(primary ? "writable (Primary)" : "read-only (Secondary)")")
        } catch {
            logger.warning("cannot make \(a.target) \(primary ? "writable" : "read-only"): \(error)")
        }
    }

    /// The replicated size grew (`repd resize`): the kernel nbd device takes the new size at once;
    /// an nbdfuse + loop device keeps its size until the next `up` (nbdfuse's file cannot grow).
    func resize(to size: UInt64) {
        guard let a = attached.withLockedValue({ $0 }) else { return }
        guard a.method == .kernelNBD, let index = a.nbdIndex else {
            return warn("\(a.target) keeps its size until the next `repd up \(resource)` (nbdfuse + loop cannot grow); new NBD connections see \(size) bytes")
        }
        do {
            try NBDKernelDriver().resize(index: index, sizeBytes: size, backend: backendIdentifier)
            logger.info("\(a.target) resized to \(size) bytes")
        } catch {
            logger.error("cannot resize \(a.target) to \(size) bytes: \(error)")
        }
    }

    /// What keeps the device busy, in one sentence; nil if nothing does (or there is no device).
    func inUse() -> String? {
        guard let a = attached.withLockedValue({ $0 }) else { return nil }
        let users = BlockDevices.users(of: a.kernelName)
        guard !users.isEmpty else { return nil }
        let name = host.device == a.target ? a.target : "\(host.device) (\(a.target))"
        return "\(name) is in use: " + users.map(\.description).joined(separator: "; ")
    }

    /// Before `secondary`: refuses (returns the reason) while the device is in use, unless forced;
    /// otherwise makes it read-only and writes back what its cache holds, while the node can
    /// still write. Call `follow(primary:)` with the outcome of the demotion afterwards.
    func prepareDemotion(force: Bool) -> String? {
        guard let a = attached.withLockedValue({ $0 }) else { return nil }
        if let busy = inUse() {
            guard force else {
                return "refusing to become Secondary: \(busy); unmount it and deactivate what is stacked on it "
                    + "(umount, vgchange -an), or use --force"
            }
            logger.warning("secondary --force: \(busy)")
        }
        do {
            try BlockDevices.setReadOnly(a.target, true)
            attached.withLockedValue { $0?.readOnly = true }
            try BlockDevices.flushBuffers(a.target)
        } catch {
            logger.warning("before becoming Secondary: \(error)")
        }
        return nil
    }

    /// The helper processes of the attachment (nbdfuse): NBD clients that are the device itself.
    var helperPIDs: Set<Int32> {
        attached.withLockedValue { a in a?.nbdfuse.map { [$0.pid] } ?? [] }
    }

    /// Before `down`: the reason to refuse while the device is in use, unless forced.
    func refuseDown(force: Bool) -> String? {
        guard let busy = inUse() else { return nil }
        guard force else {
            return "refusing to go down: \(busy); unmount it and deactivate what is stacked on it (umount, vgchange -an), or use --force"
        }
        logger.warning("down --force: \(busy)")
        return nil
    }

    // MARK: detach

    /// Writes back the device's cache, detaches it and removes the links. Call before the export
    /// stops serving.
    func detach() async {
        guard let a = attached.withLockedValue({ current in defer { current = nil }; return current }) else { return }
        if let busy = inUse() { logger.warning("detaching a device that is in use: \(busy)") }
        a.pendingReconnect?.forEach { ProcessSupport.closeDescriptor($0) }
        do { try BlockDevices.flushBuffers(a.target) } catch { logger.warning("flushing \(a.target): \(error)") }
        // The read-only flag and the discard limit outlive the attachment: the device's next user
        // must not inherit them.
        do { try BlockDevices.setReadOnly(a.target, false) } catch { logger.warning("clearing the read-only flag of \(a.target): \(error)") }
        if let limit = a.originalDiscardLimit { BlockDevices.setDiscardLimit(of: a.kernelName, bytes: limit) }
        removeLinks(a)
        switch a.method {
        case .kernelNBD:
            if let index = a.nbdIndex {
                do {
                    try NBDKernelDriver().disconnect(index: index)
                } catch {
                    logger.error("NBD_CMD_DISCONNECT /dev/nbd\(index): \(error)")
                }
                waitUntil(seconds: 10) { BlockDevices.size(a.target) ?? 0 == 0 }
            }
        case .fuseLoop:
            if let loop = a.loop {
                loop.detach()
                waitUntil(seconds: 10) { LoopDevice.backingFile(ofLoop: loop.index) == nil }
            }
            if let process = a.nbdfuse { stopFuse(process) }
        }
        ProcessSupport.removeFile(run.deviceState)
        logger.info("device \(a.target) detached; links removed")
    }

    func removeLinks(_ a: Attached) {
        for link in a.links.reversed() {
            DeviceLink.remove(link, ifPointingTo: DeviceLink.relativeTarget(from: link, toDevice: a.kernelName))
        }
        // Only if empty: other resources' links may be there.
        ProcessSupport.removeDirectory("/dev/repd/by-res")
        ProcessSupport.removeDirectory("/dev/repd")
    }

    /// Unmounts the FUSE file (nbdfuse then exits by itself), stopping nbdfuse if it does not.
    private func stopFuse(_ process: SupervisedProcess?) {
        if ProcessSupport.unmount(run.fuseMount) != nil {
            _ = ProcessSupport.unmountLazily(run.fuseMount)
        }
        if let process, !process.waitForExit(seconds: 10) { process.stop() }
        ProcessSupport.removeDirectory(run.fuseMount)
        ProcessSupport.removeFile(run.fusePIDFile)
    }

    private func waitUntil(seconds: Double, _ condition: () -> Bool) {
        let deadline = ProcessSupport.monotonicNanoseconds() + UInt64(seconds * 1e9)
        while !condition() && ProcessSupport.monotonicNanoseconds() < deadline { ProcessSupport.sleep(milliseconds: 20) }
    }

    // MARK: status

    func status() -> ResourceStatus.BlockDevice? {
        guard let a = attached.withLockedValue({ $0 }) else { return nil }
        return ResourceStatus.BlockDevice(path: host.device, target: a.target, method: a.method.rawValue, readOnly: a.readOnly, links: a.links)
    }

    // MARK: LVM

    /// Warns when the backing disk carries an LVM PV label that LVM sees outside the replicated
    /// device: LVM could then use the backing disk, behind repd's back.
    private func checkLVMSignature() {
        let disk = host.disk
        guard disk != "none", LVMLabel.present(at: disk) else { return }
        let seen = LVMLabel.visibleThrough(disk)
        guard !seen.isEmpty else { return }
        let device = host.wantsDevice ? host.device : "the replicated device"
        let pattern = seen.first.map { $0.split(separator: " ").first.map(String.init) ?? $0 } ?? disk
        warn("the backing disk \(disk) carries an LVM physical volume that LVM sees outside \(device) "
            + "(pvs lists \(seen.joined(separator: ", "))): LVM may use the backing disk and bypass replication. "
            + "Make LVM scan only the replicated device: in /etc/lvm/lvm.conf, devices { global_filter = [ \"r|^\(pattern)$|\" ] } "
            + "(Docs/BlockDevice.md, \"LVM\")")
    }

    // MARK: leftovers of a crash

    /// The state file: one `key value` line each.
    private func saveState(_ a: Attached) {
        var lines = ["method \(a.method == .kernelNBD ? "kernel-nbd" : "nbdfuse-loop")", "target \(a.target)", "kernel-name \(a.kernelName)"]
        lines += a.links.map { "link \($0)" }
        if let pid = a.nbdfuse?.pid { lines.append("nbdfuse-pid \(pid)") }
        if let limit = a.originalDiscardLimit { lines.append("discard-max-bytes \(limit)") }
        do {
            try ProcessSupport.writeTextFile(run.deviceState, lines.joined(separator: "\n") + "\n")
        } catch {
            logger.warning("cannot record the device in \(run.deviceState): \(error)")
        }
    }

    /// Undoes what a daemon that died left attached (read from its state file). Returns what it did.
    @discardableResult
    func undoLeftovers() -> [String] {
        DeviceLeftovers.undoLeftovers(run: run, resource: resource, logger: logger)
    }

}

struct DeviceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
