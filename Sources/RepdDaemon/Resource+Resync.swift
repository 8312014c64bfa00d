#if canImport(Glibc)
import Glibc
#endif
import Crypto
import NIOCore
import PeerProtocol
import RepdConfig
import RepdCore
import RepdNet
import RepdSystem

/// Resync control and repair: rate control ticks, pause and resume, operator-requested resyncs
/// (`invalidate`, `invalidate-remote`, `new-current-uuid`), online verify, and the digests that
/// verify and checksum-based resync (`csums-alg`) compare.
extension Resource {
    // MARK: digests

    static let digestAlgorithms = ["crc32c", "md5", "sha1", "sha256"]

    static func digestLength(_ algorithm: String) -> Int {
        switch algorithm {
        case "md5": 16
        case "sha1": 20
        case "sha256": 32
        default: 4
        }
    }

    /// Blocks compared per request: their digests, concatenated, fit one reply (64 bytes).
    static func blocksPerDigestRequest(_ algorithm: String) -> Int {
        max(1, PeerWire.maximumDigestLength / digestLength(algorithm))
    }

    /// The digest of each 4 KiB block of `buffer`, in order.
    static func blockDigests(_ buffer: ByteBuffer, algorithm: String) -> [[UInt8]] {
        buffer.withUnsafeReadableBytes { bytes in
            stride(from: 0, to: bytes.count, by: Int(Geometry.blockSize)).map { start in
                let block = UnsafeRawBufferPointer(rebasing: bytes[start..<min(bytes.count, start + Int(Geometry.blockSize))])
                switch algorithm {
                case "md5": return Array(Insecure.MD5.hash(data: block))
                case "sha1": return Array(Insecure.SHA1.hash(data: block))
                case "sha256": return Array(SHA256.hash(data: block))
                default:
                    let crc = CRC32C.checksum(block)
                    return [UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc >> 16 & 0xff), UInt8(crc >> 24)]
                }
            }
        }
    }

    // MARK: rate control

    func makeResyncController() -> ResyncController? {
        let disk = config.disk
        return ResyncController(settings: .init(
            fixedRate: disk.resyncRateBytesPerSecond, planAhead: disk.cPlanAheadDeciseconds, fillTarget: disk.cFillTargetBytes,
            delayTarget: disk.cDelayTargetDeciseconds, maxRate: disk.cMaxRateBytesPerSecond, minRate: disk.cMinRateBytesPerSecond))
    }

    /// Every 100 ms: the SyncSource's controller decides what may be sent next; both sides sample progress.
    func resyncTick(lastApplicationRequests: inout UInt64) {
        withState { (m: inout Mutable, effects: inout Effects) -> Void in
            let busy = m.applicationRequests != lastApplicationRequests
            lastApplicationRequests = m.applicationRequests
            guard var sync = m.peer?.sync else { return }
            let now = ProcessSupport.monotonicNanoseconds()
            sync.samples.append((at: now, done: sync.doneBlocks))
            if sync.samples.count > 330 { sync.samples.removeFirst(sync.samples.count - 300) }
            if sync.source, var controller = sync.controller, !syncPaused(m) {
                let allowed = controller.tick(acknowledged: sync.acknowledgedSinceTick, inFlight: sync.inFlightBytes, applicationBusy: busy)
                sync.controller = controller
                sync.acknowledgedSinceTick = 0
                // Unused allowance does not pile up beyond two ticks' worth.
                sync.credit = min(sync.credit + allowed, 2 * max(allowed, Int(Geometry.blockSize)))
            }
            m.peer?.sync = sync
            if sync.source { pumpResync(&m, &effects) }
        }
    }

    func syncPaused(_ m: Mutable) -> Bool {
        m.userPausedSync || m.peer?.peerPausedSync == true
    }

    /// The replication state a running sync shows, paused or not.
    func updateSyncReplicationState(_ m: inout Mutable) {
        guard let sync = m.peer?.sync else { return }
        let paused = syncPaused(m)
        let now = ProcessSupport.monotonicNanoseconds()
        if paused, m.peer?.sync?.pausedSince == nil {
            m.peer?.sync?.pausedSince = now
        } else if !paused, let since = m.peer?.sync?.pausedSince {
            m.peer?.sync?.pausedNanoseconds += now - min(now, since)
            m.peer?.sync?.pausedSince = nil
        }
        m.state.replication = sync.source ? (paused ? .pausedSyncSource : .syncSource) : (paused ? .pausedSyncTarget : .syncTarget)
    }

    // MARK: pause and resume

    func pauseSync(_ paused: Bool) -> (ok: Bool, message: String) {
        withState { (m: inout Mutable, effects: inout Effects) -> (Bool, String) in
            guard m.userPausedSync != paused else {
                return (true, paused ? "resync already paused on \(node)" : "resync is not paused on \(node)")
            }
            m.userPausedSync = paused
            if let connection = m.peer?.connection {
                connection.channel.eventLoop.execute { connection.send(.syncPause(paused: paused)) }
            }
            updateSyncReplicationState(&m)
            if !paused { pumpResync(&m, &effects) }
            logger.info(paused ? "resync paused by the operator (pause-sync)" : "resync resumed by the operator (resume-sync)")
            let running = m.peer?.sync != nil
            return (true, paused
                ? (running ? "resync paused" : "no resync is running; the next one starts paused")
                : (running ? "resync resumed" : "resync no longer paused"))
        }
    }

    func receiveSyncPause(_ paused: Bool, _ m: inout Mutable, _ effects: inout Effects) {
        m.peer?.peerPausedSync = paused
        logger.info(paused ? "the peer's operator paused the resync" : "the peer's operator resumed the resync")
        updateSyncReplicationState(&m)
        if !paused { pumpResync(&m, &effects) }
    }

    // MARK: operator-requested resync

    /// `invalidate` (this node becomes SyncTarget) and `invalidate-remote` (SyncSource). `full`: the
    /// whole disk; otherwise only the blocks already marked out of sync on either side (after a verify).
    func requestResync(localIsSource: Bool, full: Bool) -> (ok: Bool, message: String) {
        withState { (m: inout Mutable, effects: inout Effects) -> (Bool, String) in
            let verb = localIsSource ? "invalidate-remote" : "invalidate"
            guard let peer = m.peer, peer.report != nil, m.state.connection == .connected else {
                return (false, "\(verb) needs a connected peer (connection is \(m.state.connection.rawValue))")
            }
            guard m.state.replication == .established, peer.sync == nil, peer.verify == nil else {
                return (false, "\(verb): a resync or verify is running (\(m.state.replication.rawValue)); wait for it to finish")
            }
            let sourceDisk = localIsSource ? m.state.disk : m.state.peerDisk
            guard sourceDisk == .upToDate else {
                return (false, "\(verb): the \(localIsSource ? "local" : "peer's") disk is \(sourceDisk.rawValue); only UpToDate data can be the sync source")
            }
            let targetRole = localIsSource ? m.state.peerRole : m.state.role
            if targetRole == .primary {
                return (false, "\(verb): the \(localIsSource ? "peer" : "local node") is Primary; make it Secondary first (a Primary's data cannot be overwritten under its users)")
            }
            let connection = peer.connection
            connection.channel.eventLoop.execute { connection.send(.resyncRequest(senderIsSource: localIsSource, full: full)) }
            let scope = full ? "full resync" : "resync of the blocks marked out of sync (\(m.bitmap.outOfSyncCount) here)"
            logger.info("\(verb) by the operator: \(scope) \(localIsSource ? "to" : "from") the peer")
            beginSync(source: localIsSource, full: full, &m, &effects)
            return (true, "\(scope) started as \(localIsSource ? "SyncSource" : "SyncTarget")")
        }
    }

    func receiveResyncRequest(senderIsSource: Bool, full: Bool, _ m: inout Mutable, _ effects: inout Effects) {
        guard m.peer?.sync == nil else {
            logger.warning("the peer asked for a resync while one is running; ignored")
            return
        }
        logger.info("the peer's operator asked for a \(full ? "full " : "")resync; this node becomes \(senderIsSource ? "SyncTarget" : "SyncSource")")
        beginSync(source: !senderIsSource, full: full, &m, &effects)
    }

    /// `new-current-uuid [--clear-bitmap]`: a new data generation; with `--clear-bitmap` on fresh
    /// metadata, both nodes skip the initial sync (their disks must be identical, e.g. both empty).
    func newCurrentGeneration(clearBitmap: Bool) -> (ok: Bool, message: String) {
        withState { (m: inout Mutable, effects: inout Effects) -> (Bool, String) in
            if clearBitmap {
                guard m.superblock.generation.current == GenerationIdentifiers.justCreated else {
                    return (false, "new-current-uuid --clear-bitmap is only for fresh metadata (current generation is \(hex(m.superblock.generation.current)), not just created); use `repd invalidate` or `verify` instead")
                }
                if let report = m.peer?.report, report.generation.current != GenerationIdentifiers.justCreated {
                    return (false, "new-current-uuid --clear-bitmap: the peer's metadata is not fresh (generation \(hex(report.generation.current)))")
                }
                if m.peer?.sync != nil { return (false, "new-current-uuid --clear-bitmap: a resync is running") }
                guard m.peer?.report != nil else {
                    return (false, "new-current-uuid --clear-bitmap needs the peer connected (both nodes up, `repd status` shows Connected): "
                        + "run it once, on one node, while connected; run apart on both nodes it would make unrelated generations")
                }
            }
            m.superblock.generation.startNewCurrent(ProcessSupport.randomUInt64(), primary: m.state.role == .primary)
            if clearBitmap {
                m.superblock.generation.bitmap = 0
                if m.bitmap.outOfSyncCount > 0 { m.dirtyPages.formUnion(m.bitmap.clearAll()) }
                m.superblock.flags.formUnion([.consistent, .wasUpToDate])
                _ = try? m.state.apply(.attach(.upToDate))
            }
            persistSuperblock(&m)
            logger.info("new current generation \(hex(m.superblock.generation.current))\(clearBitmap ? " with a clear bitmap: the initial sync is skipped" : "")")
            if clearBitmap, m.peer?.report != nil, let connection = m.peer?.connection {
                // An empty resync from us makes the peer adopt the generation and become UpToDate. The
                // request goes before our new state, so that the peer does not decide a full sync first.
                connection.channel.eventLoop.execute { connection.send(.resyncRequest(senderIsSource: true, full: false)) }
                beginSync(source: true, full: false, &m, &effects)
                sendState(&m, &effects)
                return (true, "new current generation \(hex(m.superblock.generation.current)); initial sync skipped, the peer becomes UpToDate")
            }
            sendState(&m, &effects)
            return (true, "new current generation \(hex(m.superblock.generation.current))"
                + (clearBitmap ? "; the peer still has fresh metadata: run the same on it, or it gets a full sync from here" : ""))
        }
    }

    // MARK: online verify

    func startVerify() -> (ok: Bool, message: String) {
        withState { (m: inout Mutable, effects: inout Effects) -> (Bool, String) in
            guard let peer = m.peer, peer.report != nil, m.state.connection == .connected else {
                return (false, "verify needs a connected peer (connection is \(m.state.connection.rawValue))")
            }
            guard m.state.replication == .established, peer.sync == nil, peer.verify == nil else {
                return (false, "verify: a resync or verify is running (\(m.state.replication.rawValue))")
            }
            guard m.state.disk == .upToDate, m.state.peerDisk == .upToDate else {
                return (false, "verify compares two UpToDate disks; here \(m.state.disk.rawValue), peer \(m.state.peerDisk.rawValue)")
            }
            let algorithm = config.net.verifyAlg ?? "crc32c"
            guard Self.digestAlgorithms.contains(algorithm) else {
                return (false, "verify-alg \(algorithm) is not supported; use one of \(Self.digestAlgorithms.joined(separator: ", "))")
            }
            let total = UInt64(m.exportSize / Geometry.blockSize)
            m.peer?.verify = VerifyProgress(source: true, algorithm: algorithm, totalBlocks: total, startedAt: ProcessSupport.monotonicNanoseconds())
            m.state.replication = .verifySource
            let connection = peer.connection
            connection.channel.eventLoop.execute { connection.send(.verifyNotice(running: true, blocks: total)) }
            logger.info("online verify started (verify-alg \(algorithm)): \(total) blocks of 4 KiB")
            pumpVerify(&m, &effects)
            return (true, "online verify started with \(algorithm) over \(total * 4) KiB")
        }
    }

    func receiveVerifyNotice(running: Bool, blocks: UInt64, _ m: inout Mutable) {
        if running {
            m.peer?.verify = VerifyProgress(source: false, algorithm: "", totalBlocks: blocks, startedAt: ProcessSupport.monotonicNanoseconds())
            m.state.replication = .verifyTarget
            logger.info("the peer started an online verify")
        } else {
            m.peer?.verify = nil
            if m.state.replication == .verifyTarget { m.state.replication = .established }
            m.lastSyncSummary = "online verify by the peer: \(blocks) blocks (\(blocks * 4) KiB) out of sync"
            logger.info("the peer finished its online verify: \(blocks) blocks out of sync")
        }
    }

    func pumpVerify(_ m: inout Mutable, _ effects: inout Effects) {
        guard var verify = m.peer?.verify, verify.source else { return }
        let run = Self.blocksPerDigestRequest(verify.algorithm)
        let blocks = Int(m.exportSize / Geometry.blockSize)
        let window = 512
        while verify.inFlight.count < window, verify.cursor < blocks {
            let first = verify.cursor
            let last = min(blocks, first + run)
            verify.cursor = last
            let range = UInt64(first) * Geometry.blockSize..<UInt64(last) * Geometry.blockSize
            let (id, mayStart) = m.tracker.admit(range, origin: .resync, peerDone: false)
            verify.inFlight[id] = VerifyRequest(id: id, range: range)
            m.peer?.verify = verify
            if mayStart { startVerifyRead(id, &m, &effects) }
            verify = m.peer!.verify!
        }
        m.peer?.verify = verify
        if verify.inFlight.isEmpty && verify.cursor >= blocks { finishVerify(&m, &effects) }
    }

    func startVerifyRead(_ id: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        guard let request = m.peer?.verify?.inFlight[id], let algorithm = m.peer?.verify?.algorithm,
              let connection = m.peer?.connection else { return }
        let data = self.data
        effects.append {
            self.threadPool.submit { _ in
                let digests = (try? Resource.readBuffer(data, offset: request.range.lowerBound, count: request.range.count))
                    .map { Resource.blockDigests($0, algorithm: algorithm) }
                self.withState { (m: inout Mutable, effects: inout Effects) -> Void in
                    // The request is queued before the writes that waited for this read are
                    // released, so the peer digests the same data we did.
                    defer { for ready in m.tracker.markLocalDone(id) { self.startOperation(ready, &m, &effects) } }
                    guard m.peer?.connection === connection, m.peer?.verify?.inFlight[id] != nil else { return }
                    guard let digests else {
                        self.logger.error("verify: cannot read \(request.range); marked out of sync")
                        self.verifyResult(id, differing: [request.range], &m, &effects)
                        return
                    }
                    m.peer?.verify?.inFlight[id]?.localDigests = digests
                    m.peer?.verify?.inFlight[id]?.requested = true
                    connection.channel.eventLoop.execute {
                        connection.send(.checksumRequest(offset: request.range.lowerBound, length: UInt32(request.range.count), algorithm: algorithm))
                    }
                }
            }
        }
    }

    private func verifyResult(_ id: UInt64, differing: [Range<UInt64>], _ m: inout Mutable, _ effects: inout Effects) {
        guard let request = m.peer?.verify?.inFlight.removeValue(forKey: id) else { return }
        m.tracker.markPeerDone(id)
        m.peer?.verify?.doneBlocks += UInt64(request.range.count) / Geometry.blockSize
        for range in differing {
            m.markOutOfSync(range)
            m.peer?.verify?.outOfSyncBlocks += UInt64(range.count) / Geometry.blockSize
            var found = m.peer?.verify?.found ?? []
            if let last = found.last, last.upperBound == range.lowerBound {
                found[found.count - 1] = last.lowerBound..<range.upperBound
            } else if found.count < 200 {
                found.append(range)
            }
            m.peer?.verify?.found = found
        }
        pumpVerify(&m, &effects)
    }

    private func finishVerify(_ m: inout Mutable, _ effects: inout Effects) {
        guard let verify = m.peer?.verify else { return }
        m.peer?.verify = nil
        m.state.replication = .established
        let seconds = Double(ProcessSupport.monotonicNanoseconds() - verify.startedAt) / 1e9
        let found = verify.outOfSyncBlocks
        for range in verify.found {
            logger.warning("verify: out of sync: \(range.lowerBound)+\(range.count) (bytes \(range.lowerBound)..<\(range.upperBound))")
        }
        let advice = found == 0 ? "" : "; repair with `repd invalidate-remote --reset-bitmap=no \(config.name)` on the node whose data is right (or `invalidate --reset-bitmap=no` on the other)"
        let summary = "online verify done in \(oneDecimal(seconds)) s: \(verify.doneBlocks) blocks compared, \(found) out of sync (\(found * 4) KiB)\(advice)"
        logger.info("\(summary)")
        m.lastSyncSummary = summary
        m.lastVerify = (found * Geometry.blockSize / 1024, UInt64(time(nil)))
        persistSuperblock(&m)
        if found > 0 { runHandler("out-of-sync", ["REPD_OUT_OF_SYNC_BLOCKS": "\(found)"]) }
        if let connection = m.peer?.connection {
            connection.channel.eventLoop.execute { connection.send(.verifyNotice(running: false, blocks: found)) }
        }
    }

    // MARK: digests for the peer

    func receiveChecksumRequest(offset: UInt64, length: UInt32, algorithm: String, connection: PeerConnection,
                                _ m: inout Mutable, _ effects: inout Effects) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        let range = overflow ? 0..<0 : offset..<end
        guard !overflow, Self.digestAlgorithms.contains(algorithm), length > 0, length % UInt32(Geometry.blockSize) == 0,
              Int(length) / Int(Geometry.blockSize) <= Self.blocksPerDigestRequest(algorithm), range.upperBound <= size
        else {
            logger.error("the peer asked for digests of \(offset)+\(length) with \(algorithm): not a valid request; disconnecting")
            link?.dropConnection(reason: "invalid checksum request from the peer")
            return
        }
        let (id, mayStart) = m.tracker.admit(range, origin: .peer, peerDone: true)
        m.digestJobs[id] = DigestJob(id: id, range: range, algorithm: algorithm, connection: connection)
        if mayStart { startDigestJob(id, &m, &effects) }
    }

    func startDigestJob(_ id: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        guard let job = m.digestJobs[id] else { return }
        let data = self.data
        effects.append {
            self.threadPool.submit { _ in
                // An unreadable range answers with an empty digest: the requester marks it out of sync.
                let digest = (try? Resource.readBuffer(data, offset: job.range.lowerBound, count: job.range.count))
                    .map { Resource.blockDigests($0, algorithm: job.algorithm).flatMap { $0 } } ?? []
                job.connection.channel.eventLoop.execute {
                    job.connection.send(.checksumReply(offset: job.range.lowerBound, length: UInt32(job.range.count), digest: digest))
                }
                self.withState { (m: inout Mutable, effects: inout Effects) -> Void in
                    m.digestJobs[id] = nil
                    for ready in m.tracker.markLocalDone(id) { self.startOperation(ready, &m, &effects) }
                }
            }
        }
    }

    /// The blocks of `range` whose digests differ (adjacent ones merged).
    static func differingRanges(_ range: Range<UInt64>, local: [[UInt8]], remote: [UInt8], algorithm: String) -> [Range<UInt64>] {
        let length = digestLength(algorithm)
        guard remote.count == local.count * length else { return [range] }
        var result: [Range<UInt64>] = []
        for (index, digest) in local.enumerated() where !remote[(index * length)..<((index + 1) * length)].elementsEqual(digest) {
            let start = range.lowerBound + UInt64(index) * Geometry.blockSize
            let block = start..<(start + Geometry.blockSize)
            if let last = result.last, last.upperBound == block.lowerBound {
                result[result.count - 1] = last.lowerBound..<block.upperBound
            } else {
                result.append(block)
            }
        }
        return result
    }

    func receiveChecksumReply(offset: UInt64, length: UInt32, digest: [UInt8], _ m: inout Mutable, _ effects: inout Effects) {
        if let verify = m.peer?.verify, verify.source,
           let (id, request) = verify.inFlight.first(where: { $0.value.range.lowerBound == offset && $0.value.range.count == Int(length) }),
           request.requested {
            let differing = Self.differingRanges(request.range, local: request.localDigests, remote: digest, algorithm: verify.algorithm)
            verifyResult(id, differing: differing, &m, &effects)
            return
        }
        if let sync = m.peer?.sync, sync.source, let algorithm = sync.checksumAlgorithm,
           let (id, transfer) = sync.inFlight.first(where: { $0.value.range.lowerBound == offset && $0.value.range.count == Int(length) }),
           let buffer = transfer.data {
            let differing = Self.differingRanges(transfer.range, local: transfer.localDigests, remote: digest, algorithm: algorithm)
            let same = UInt64(transfer.range.count - differing.reduce(0) { $0 + $1.count }) / Geometry.blockSize
            m.peer?.sync?.sameBlocks += same
            m.peer?.sync?.inFlight[id]?.data = nil
            if differing.isEmpty {
                completeResyncTransfer(id, status: 0, &m, &effects)
                return
            }
            m.peer?.sync?.inFlight[id]?.awaitingAcks = differing
            sendResyncData(transfer.range, parts: differing, from: buffer, &m)
            return
        }
        logger.warning("the peer sent digests for \(offset)+\(length) nobody asked for; ignored")
    }

    /// Sends `parts` of a range read into `buffer` as syncData messages.
    func sendResyncData(_ range: Range<UInt64>, parts: [Range<UInt64>], from buffer: ByteBuffer, _ m: inout Mutable) {
        guard let connection = m.peer?.connection else { return }
        var messages: [PeerMessage] = []
        for part in parts {
            let start = Int(part.lowerBound - range.lowerBound)
            guard let slice = buffer.getSlice(at: buffer.readerIndex + start, length: part.count) else { continue }
            messages.append(.syncData(offset: part.lowerBound, payload: slice))
            m.sentBytes += UInt64(part.count)
            m.peer?.sync?.movedBytes += UInt64(part.count)
        }
        connection.channel.eventLoop.execute {
            for message in messages { connection.send(message) }
        }
    }
}
