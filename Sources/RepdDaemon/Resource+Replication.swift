import Crypto
import NIOCore
import NIOPosix
import PeerProtocol
import RepdConfig
import RepdCore
import RepdNet
import RepdSystem

/// The peer side of a resource: the link, the state exchange, applying the peer's writes,
/// and what happens when the link goes away.
extension Resource: PeerLinkDelegate {
    func startPeerLink() async throws {
        guard let peer = config.peer else { return }
        let net = config.net
        let configuration = PeerLinkConfiguration(
            resource: config.name, localNode: node, peerNode: peer.names.first ?? "peer",
            listenHost: config.local.address.host, listenPort: config.local.address.port,
            peerHost: peer.address.host, peerPort: peer.address.port,
            sharedSecret: net.sharedSecret.map { Array($0.utf8) }, algorithm: net.cramHMACAlg,
            connectInterval: .seconds(Int64(max(1, net.connectIntervalSeconds))),
            pingInterval: .seconds(Int64(max(1, net.pingIntervalSeconds))),
            pingTimeout: .milliseconds(Int64(max(1, net.pingTimeoutDeciseconds)) * 100),
            sendBufferSize: net.sndbufSize, receiveBufferSize: net.rcvbufSize)
        let link = PeerLink(configuration: configuration, group: peerLoop, logger: logger, delegate: self,
                            mac: Resource.hmac, random: { ProcessSupport.randomUInt64() })
        self.link = link
        do {
            try await link.start()
        } catch {
            throw ResourceError("cannot listen for the peer on \(config.local.address): \(error)")
        }
        logger.info("replication: listening on \(config.local.address), connecting to \(configuration.peerNode) at \(peer.address) (protocol \(net.protocol.rawValue))")
        let timeoutNanos = UInt64(max(1, net.timeoutDeciseconds)) * 100_000_000
        group.next().scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .milliseconds(500)) { [weak self] task in
            guard let self else { task.cancel(); return }
            self.checkAcknowledgementTimeout(timeoutNanos)
        }
        var lastApplicationRequests: UInt64 = 0
        group.next().scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { [weak self] task in
            guard let self else { task.cancel(); return }
            self.resyncTick(lastApplicationRequests: &lastApplicationRequests)
        }
    }

    static let hmac: @Sendable (String, [UInt8], [UInt8]) -> [UInt8] = { algorithm, key, message in
        let symmetricKey = SymmetricKey(data: key)
        switch algorithm {
        case "sha1": return Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: symmetricKey))
        default: return Array(HMAC<SHA256>.authenticationCode(for: message, using: symmetricKey))
        }
    }

    /// The link is considered broken when the peer leaves a write unacknowledged longer than `timeout`.
    private func checkAcknowledgementTimeout(_ timeoutNanos: UInt64) {
        let now = ProcessSupport.monotonicNanoseconds()
        let late = mutable.withLockedValue { m -> Bool in
            guard m.peer != nil else { return false }
            return m.localWrites.values.contains { $0.replicated && !$0.peerDone && $0.startedAt + timeoutNanos < now }
        }
        if late {
            link?.dropConnection(reason: "the peer did not acknowledge a write within timeout (\(Double(timeoutNanos) / 1e9) s)")
        }
    }

    var localResolves: Bool { link?.configuration.isLeader ?? true }

    func stateReport(_ m: Mutable) -> PeerStateReport {
        var flags: PeerStateReport.Flags = []
        if m.superblock.flags.contains(.crashedPrimary) { flags.insert(.crashedPrimary) }
        if m.superblock.flags.contains(.consistent) { flags.insert(.consistent) }
        if m.superblock.flags.contains(.wasUpToDate) { flags.insert(.wasUpToDate) }
        if m.discardMyData { flags.insert(.discardMyData) }
        return PeerStateReport(
            role: m.state.role, disk: m.state.disk, usableSize: size, generation: m.superblock.generation,
            outOfSyncBlocks: UInt64(m.bitmap.outOfSyncCount), flags: flags,
            replicationProtocol: UInt8(ascii: config.net.protocol.rawValue.unicodeScalars.first!), allowTwoPrimaries: config.net.allowTwoPrimaries)
    }

    /// Tells the peer our role, disk and generations (after any change of them).
    func sendState(_ m: inout Mutable, _ effects: inout Effects) {
        guard let connection = m.peer?.connection else { return }
        let report = stateReport(m)
        connection.channel.eventLoop.execute { connection.send(.state(report)) }
    }

    /// Writes the superblock now (state changes are rare; the lock is held so they stay in order).
    func persistSuperblock(_ m: inout Mutable) {
        m.superblock.updateCounter += 1
        do {
            try metadata.writeBitmapPages(m.bitmap, pages: m.dirtyPages.sorted())
            m.bitmapWrites += UInt64(m.dirtyPages.count)
            m.dirtyPages.removeAll()
            try metadata.writeSuperblock(m.superblock)
        } catch {
            logger.error("cannot write metadata: \(error)")
        }
    }

    // MARK: PeerLinkDelegate

    public func peerLinkEstablished(_ connection: PeerConnection, hello: PeerHello) {
        withState { (m: inout Mutable, effects: inout Effects) -> Void in
            m.peer = PeerSession(connection: connection, hello: hello)
            m.linkMessage = nil
            sendState(&m, &effects)
        }
    }

    public func peerLinkRefused(reason: String) {
        mutable.withLockedValue { $0.linkMessage = "connection to the peer refused: \(reason)" }
    }

    public func peerLinkLost(_ connection: PeerConnection, reason: String) {
        withState { (m: inout Mutable, effects: inout Effects) -> Void in
            guard let peer = m.peer, peer.connection === connection else { return }
            logger.warning("lost the connection to the peer: \(reason)")
            if m.splitBrain == nil { m.linkMessage = "connection lost: \(reason)" }
            // Writes the peer did not confirm are out of sync; the clients keep their data.
            for op in m.tracker.awaitingPeer {
                // Resync transfers are still marked; verify requests changed nothing.
                if op.origin == .local { m.markOutOfSync(op.range) }
                m.tracker.markPeerDone(op.id)
                if var write = m.localWrites[op.id] {
                    write.peerDone = true
                    write.replicated = false
                    m.localWrites[op.id] = write
                    completeIfDone(op.id, &m, &effects)
                }
            }
            for (_, promise) in peer.flushes { effects.append { promise.succeed(()) } }
            failPulls("the connection to the UpToDate peer was lost", &m, &effects)
            m.pullServes.removeAll()
            let wasSyncing = peer.sync != nil
            m.peer = nil
            let wasPeerUpToDate = m.state.peerDisk == .upToDate
            _ = try? m.state.apply(.connection(link?.isStandAlone == true ? .standAlone : .connecting))
            if m.state.role == .primary && m.state.disk == .upToDate && wasPeerUpToDate && !m.shuttingDown && m.splitBrain == nil {
                // From now on this node's data is newer than the peer's.
                m.superblock.generation.startNewCurrent(ProcessSupport.randomUInt64(), primary: true)
                logger.info("new current generation \(hex(m.superblock.generation.current)) (Primary without its peer)")
            }
            if wasSyncing { logger.warning("resync interrupted; it resumes from the bitmap when the peer is back") }
            persistSuperblock(&m)
        }
    }

    public func peerLinkReceived(_ message: PeerMessage, on connection: PeerConnection) {
        withState { (m: inout Mutable, effects: inout Effects) -> Void in
            guard m.peer?.connection === connection else { return }
            switch message {
            case .state(let report):
                receiveState(report, &m, &effects)
            case .write(let write):
                receiveWrite(write, connection: connection, &m, &effects)
            case .writeAck(let sequence, let status):
                receiveWriteAck(sequence: sequence, status: status, &m, &effects)
            case .receiveAck(let sequence):
                if let id = m.peer?.writesBySequence[sequence], var write = m.localWrites[id] {
                    write.peerReceived = true
                    m.localWrites[id] = write
                    completeIfDone(id, &m, &effects)
                }
            case .flush(let sequence):
                let data = self.data
                effects.append {
                    self.threadPool.submit { _ in
                        let status: UInt32 = (try? data.sync()) == nil ? 5 : 0
                        connection.send(.flushAck(sequence: sequence, status: status))
                    }
                }
            case .flushAck(let sequence, _):
                if let promise = m.peer?.flushes.removeValue(forKey: sequence) {
                    effects.append { promise.succeed(()) }
                }
            case .bitmapPage(let index, let bytes):
                mergePeerBitmapPage(index: Int(index), bytes: bytes, &m)
            case .bitmapDone:
                m.peer?.peerBitmapDone = true
                pumpResync(&m, &effects)
            case .syncStart(_, let total, let full):
                logger.info("resync from the peer starting: \(total) blocks of 4 KiB\(full ? " (full sync)" : "")")
                if m.peer?.sync == nil {
                    m.peer?.sync = ResyncProgress(source: false, full: full, totalBlocks: total, startedAt: ProcessSupport.monotonicNanoseconds())
                } else {
                    m.peer?.sync?.totalBlocks = total
                }
            case .syncData(let offset, let payload):
                let write = PeerWrite(sequence: 0, offset: offset, length: UInt32(payload.readableBytes), kind: .data, fua: false, noHole: false, payload: payload)
                receiveWrite(write, connection: connection, isResync: true, &m, &effects)
            case .syncAck(let offset, let length, let status):
                receiveSyncAck(offset: offset, length: length, status: status, &m, &effects)
            case .syncDone(let blocks):
                finishSyncTarget(blocks: blocks, &m, &effects)
            case .checksumRequest(let offset, let length, let algorithm):
                receiveChecksumRequest(offset: offset, length: length, algorithm: algorithm, connection: connection, &m, &effects)
            case .checksumReply(let offset, let length, let digest):
                receiveChecksumReply(offset: offset, length: length, digest: digest, &m, &effects)
            case .syncPause(let paused):
                receiveSyncPause(paused, &m, &effects)
            case .resyncRequest(let senderIsSource, let full):
                receiveResyncRequest(senderIsSource: senderIsSource, full: full, &m, &effects)
            case .verifyNotice(let running, let blocks):
                receiveVerifyNotice(running: running, blocks: blocks, &m)
            case .dataRequest(let id, let offset, let length):
                receiveDataRequest(id: id, offset: offset, length: length, connection: connection, &m, &effects)
            case .dataReply(let id, let status, let payload):
                receiveDataReply(id: id, status: status, payload: payload, connection: connection, &m, &effects)
            case .hello, .authChallenge, .authResponse, .authResult, .chosen, .ping, .pingAck, .error:
                break
            }
        }
    }

    // MARK: state exchange and the sync decision

    private func receiveState(_ report: PeerStateReport, _ m: inout Mutable, _ effects: inout Effects) {
        let first = m.peer?.report == nil
        m.peer?.report = report
        m.lastPeerReport = report
        _ = try? m.state.apply(.peer(role: report.role, disk: report.disk))
        if first {
            _ = try? m.state.apply(.connection(.connected))
            if report.usableSize != size {
                logger.warning("the peer's disk is \(report.usableSize) bytes, ours \(size): the smaller size is replicated")
            }
            m.exportSize = min(size, report.usableSize)
            logger.info("connected: peer \(m.peer!.hello.node) is \(report.role.rawValue)/\(report.disk.rawValue), protocol \(config.net.protocol.rawValue)")
            decideSync(&m, &effects)
        } else if m.peer?.sync == nil && m.state.replication == .established
                    && (m.state.disk == .inconsistent || report.disk == .inconsistent) {
            decideSync(&m, &effects)
        }
    }

    func decideSync(_ m: inout Mutable, _ effects: inout Effects) {
        guard var peer = m.peer, let report = peer.report else { return }
        let local = SyncView(
            generation: m.superblock.generation, disk: m.state.disk, role: m.state.role,
            crashedPrimary: m.superblock.flags.contains(.crashedPrimary), outOfSyncBlocks: UInt64(m.bitmap.outOfSyncCount))
        let remote = SyncView(
            generation: report.generation, disk: report.disk, role: report.role,
            crashedPrimary: report.flags.contains(.crashedPrimary), outOfSyncBlocks: report.outOfSyncBlocks)
        let decision = SyncDecider.decide(local: local, peer: remote, localResolves: localResolves)
        peer.decision = decision
        m.peer = peer
        logger.info("sync decision: \(decision)")
        // --discard-my-data applies to this handshake only.
        let discardMyData = m.discardMyData
        m.discardMyData = false
        switch decision.strategy {
        case .noSync, .becomeSyncSource:
            if m.state.disk == .consistent {
                // The peer confirms our data is the newest generation.
                _ = try? m.state.apply(.attach(.upToDate))
                m.superblock.flags.formUnion([.consistent, .wasUpToDate])
                sendState(&m, &effects)
            }
        default:
            break
        }
        if let corrected = decision.correctedLocal, corrected != m.superblock.generation {
            // Some rules repair the identifiers of an interrupted resync before comparing.
            m.superblock.generation = corrected
            persistSuperblock(&m)
        }
        switch decision.strategy {
        case .noSync, .bothInconsistent:
            m.state.replication = .established
            if case .noSync = decision.strategy, m.bitmap.outOfSyncCount > 0 {
                m.dirtyPages.formUnion(m.bitmap.clearAll())
            }
            if case .noSync = decision.strategy {
                m.superblock.generation.clearBitmapUUID()
                m.superblock.flags.remove(.crashedPrimary)
                persistSuperblock(&m)
            }
            becomePrimaryIfPending(&m, &effects)
        case .becomeSyncSource(let full), .becomeSyncTarget(let full):
            let source: Bool
            if case .becomeSyncSource = decision.strategy { source = true } else { source = false }
            if !source && m.state.role == .primary && !checkRRConflict(decision.strategy, &m, &effects) { return }
            beginSync(source: source, full: full, &m, &effects)
        case .splitBrain, .splitBrainUnresolvable:
            handleSplitBrain(decision, local: local, remote: remote, report: report, discardMyData: discardMyData, &m, &effects)
        case .unrelatedData:
            let reason = "\(decision); the nodes disconnect (StandAlone) until an operator decides which data to keep"
            logger.error("split brain or unrelated data detected: \(reason)")
            m.linkMessage = "split brain: \(decision.explanation)"
            let connection = peer.connection
            let link = self.link
            connection.channel.eventLoop.execute {
                connection.send(.error(reason: "unrelated data: \(decision.explanation)")).whenComplete { _ in
                    link?.goStandAlone(reason: "split brain: \(decision.explanation)")
                }
            }
        }
    }

    func beginSync(source: Bool, full: Bool, _ m: inout Mutable, _ effects: inout Effects) {
        guard let connection = m.peer?.connection else { return }
        var progress = ResyncProgress(source: source, full: full, totalBlocks: 0, startedAt: ProcessSupport.monotonicNanoseconds())
        if source {
            progress.controller = makeResyncController()
            if let csums = config.net.csumsAlg, Self.digestAlgorithms.contains(csums) { progress.checksumAlgorithm = csums }
        }
        m.peer?.sync = progress
        if m.userPausedSync {
            // Paused here before the peer connected: it must hold too.
            connection.channel.eventLoop.execute { connection.send(.syncPause(paused: true)) }
        }
        if full {
            m.dirtyPages.formUnion(m.bitmap.markAllOutOfSync())
            // Only what both disks hold is replicated: a larger disk's tail is not resynced.
            if m.exportSize < size { m.markInSync(m.exportSize..<size) }
        }
        updateSyncReplicationState(&m)
        if source {
            runHandler("before-resync-source")
            if let csums = config.net.csumsAlg, progress.checksumAlgorithm == nil {
                logger.warning("csums-alg \(csums) is not supported (use \(Self.digestAlgorithms.joined(separator: ", "))); resync sends every block")
            }
        } else {
            _ = try? m.state.apply(.attach(.inconsistent))
            m.superblock.flags.remove(.consistent)
            m.superblock.flags.remove(.wasUpToDate)
            sendState(&m, &effects)
            runHandler("before-resync-target")
        }
        persistSuperblock(&m)
        if !full {
            // Both sides send their bitmaps: the sync covers the union of both sides' changes.
            var pages: [PeerMessage] = []
            for page in 0..<m.bitmap.pageCount {
                let bytes = m.bitmap.page(page)
                if bytes.contains(where: { $0 != 0 }) {
                    pages.append(.bitmapPage(index: UInt32(page), bytes: ByteBuffer(bytes: bytes)))
                }
            }
            let count = UInt32(pages.count)
            connection.channel.eventLoop.execute {
                for page in pages { connection.send(page) }
                connection.send(.bitmapDone(pages: count))
            }
        } else {
            m.peer?.peerBitmapDone = true
        }
        logger.info("resync starting as \(source ? "SyncSource" : "SyncTarget")\(full ? " (full sync)" : " (blocks out of sync on either side)")")
        pumpResync(&m, &effects)
    }

    private func mergePeerBitmapPage(index: Int, bytes: ByteBuffer, _ m: inout Mutable) {
        let blocksPerPage = 4096 * 8
        var bytes = bytes
        var byteIndex = 0
        while let byte = bytes.readInteger(as: UInt8.self) {
            if byte != 0 {
                for bit in 0..<8 where byte & (1 << bit) != 0 {
                    let block = UInt64(index * blocksPerPage + byteIndex * 8 + bit)
                    if block < UInt64(m.bitmap.blockCount) {
                        m.markOutOfSync((block * Geometry.blockSize)..<((block + 1) * Geometry.blockSize))
                    }
                }
            }
            byteIndex += 1
        }
    }

    // MARK: the peer's writes

    private func receiveWrite(_ write: PeerWrite, connection: PeerConnection, isResync: Bool = false, _ m: inout Mutable, _ effects: inout Effects) {
        // A hostile or broken peer may name any offset: never let the end overflow.
        let (end, overflow) = write.offset.addingReportingOverflow(UInt64(write.length))
        let range = overflow ? UInt64.max..<UInt64.max : write.offset..<end
        if config.net.protocol == .B && !isResync {
            let sequence = write.sequence
            connection.channel.eventLoop.execute { connection.send(.receiveAck(sequence: sequence)) }
        }
        guard !overflow, range.upperBound <= size, m.state.disk != .diskless else {
            let sequence = write.sequence
            logger.error("the peer sent a write beyond our disk (\(range)); refused")
            connection.channel.eventLoop.execute {
                if isResync {
                    connection.send(.syncAck(offset: write.offset, length: write.length, status: 28))
                } else {
                    connection.send(.writeAck(sequence: sequence, status: 28))
                }
            }
            return
        }
        m.receivedBytes += UInt64(write.kind == .data ? write.length : 0)
        if isResync { m.peer?.sync?.movedBytes += UInt64(write.length) }
        var segments = [range]
        if !isResync {
            let overlaps = m.tracker.unacknowledgedLocalOverlaps(range)
            if !overlaps.isEmpty {
                m.conflicts += 1
                if localResolves {
                    segments = range.subtracting(overlaps)
                    logger.info("concurrent write conflict at \(range.lowerBound)+\(range.count): this node resolves; our data kept for \(overlaps.map { "\($0.lowerBound)+\($0.count)" }.joined(separator: ","))")
                } else {
                    logger.info("concurrent write conflict at \(range.lowerBound)+\(range.count): the peer resolves; its data is applied after ours")
                }
            }
        }
        let (id, mayStart) = m.tracker.admit(range, origin: .peer, peerDone: true)
        m.peerApplies[id] = PeerApply(
            id: id, sequence: write.sequence, range: range, segments: segments, kind: write.kind, fua: write.fua, noHole: write.noHole,
            payload: write.payload, isResync: isResync, connection: connection)
        if mayStart { startPeerApply(id, &m, &effects) }
    }

    func startPeerApply(_ id: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        guard let apply = m.peerApplies[id] else { return }
        let data = self.data
        let inline = Self.writesInline(kind: apply.kind, fua: apply.fua, count: apply.range.count, replicated: true)
        effects.append {
            let run: @Sendable (NIOThreadPool.WorkItemState) -> Void = { _ in
                var status: UInt32 = 0
                do {
                    for segment in apply.segments where !segment.isEmpty {
                        try Resource.apply(kind: apply.kind, range: segment, payload: apply.payload,
                                           payloadOffset: Int(segment.lowerBound - apply.range.lowerBound),
                                           fua: false, noHole: apply.noHole, fastZero: false, to: data)
                    }
                    if apply.fua { try data.sync() }
                } catch {
                    self.logger.error("writing the peer's data at \(apply.range.lowerBound)+\(apply.range.count): \(error)")
                    status = 5
                }
                self.peerApplyFinished(id, status: status)
            }
            if inline { run(.active) } else { self.threadPool.submit(run) }
        }
    }

    private func peerApplyFinished(_ id: UInt64, status: UInt32) {
        withState { (m: inout Mutable, effects: inout Effects) -> Void in
            guard let apply = m.peerApplies.removeValue(forKey: id) else { return }
            if let pullID = apply.pullID {
                for ready in m.tracker.markLocalDone(id) { startOperation(ready, &m, &effects) }
                pulled(pullID, ok: status == 0, &m, &effects)
                return
            }
            if status == 0 {
                // The peer's data is on our disk: these blocks are in sync.
                m.markInSync(apply.range)
                if apply.isResync { m.peer?.sync?.doneBlocks += UInt64(apply.range.count) / Geometry.blockSize }
            }
            // Acknowledge before releasing writes that waited for this one (see WriteConflictTracker).
            let connection = apply.connection
            let ack: PeerMessage = apply.isResync
                ? .syncAck(offset: apply.range.lowerBound, length: UInt32(apply.range.count), status: status)
                : .writeAck(sequence: apply.sequence, status: status)
            connection.channel.eventLoop.execute { connection.send(ack) }
            for ready in m.tracker.markLocalDone(id) { startOperation(ready, &m, &effects) }
        }
    }

    private func receiveWriteAck(sequence: UInt64, status: UInt32, _ m: inout Mutable, _ effects: inout Effects) {
        guard let id = m.peer?.writesBySequence[sequence], var write = m.localWrites[id] else { return }
        write.peerDone = true
        m.localWrites[id] = write
        m.tracker.markPeerDone(id)
        if status != 0 {
            logger.error("the peer failed to write \(write.range.lowerBound)+\(write.range.count) (error \(status)); marked out of sync")
            m.markOutOfSync(write.range)
        } else if m.peer?.sync != nil {
            // Mirrored during a resync: these blocks need not be sent again.
            m.markInSync(write.range)
        }
        completeIfDone(id, &m, &effects)
    }

    // MARK: resync, SyncSource side

    /// Keeps up to `resyncWindow` bytes of resync data in flight, from the bitmap.
    func pumpResync(_ m: inout Mutable, _ effects: inout Effects) {
        guard var sync = m.peer?.sync, sync.source, m.peer?.peerBitmapDone == true else { return }
        if !sync.started {
            sync.started = true
            sync.totalBlocks = UInt64(m.bitmap.outOfSyncCount)
            let total = sync.totalBlocks, full = sync.full
            if let connection = m.peer?.connection {
                connection.channel.eventLoop.execute { connection.send(.syncStart(sourceIsSender: true, totalBlocks: total, full: full)) }
            }
        }
        if syncPaused(m) { return }
        let window = 16 << 20
        let blockSize = Int(Geometry.blockSize)
        let limited = sync.controller != nil
        while sync.inFlightBytes < window, !limited || sync.credit > 0, let first = m.bitmap.nextOutOfSync(fromBlock: sync.cursor) {
            // 1 MiB per transfer at most, less when the rate controller allows less, and with
            // csums-alg as many blocks as one digest reply describes.
            var maximumRun = limited ? max(1, min(256, sync.credit / blockSize)) : 256
            if let algorithm = sync.checksumAlgorithm { maximumRun = min(maximumRun, Self.blocksPerDigestRequest(algorithm)) }
            var last = first
            while last + 1 < m.bitmap.blockCount && last + 1 - first < maximumRun && m.bitmap.isOutOfSync(block: last + 1) { last += 1 }
            sync.cursor = last + 1
            let range = UInt64(first) * Geometry.blockSize..<UInt64(last + 1) * Geometry.blockSize
            let (id, mayStart) = m.tracker.admit(range, origin: .resync, peerDone: false)
            sync.inFlight[id] = ResyncTransfer(id: id, range: range)
            sync.inFlightBytes += range.count
            if limited { sync.credit -= range.count }
            m.peer?.sync = sync
            if mayStart { startResyncRead(id, &m, &effects) }
            sync = m.peer!.sync!
        }
        m.peer?.sync = sync
        if sync.inFlight.isEmpty && m.bitmap.nextOutOfSync(fromBlock: sync.cursor) == nil {
            if m.bitmap.outOfSyncCount > 0 {
                // Blocks marked again behind the cursor (a failed transfer): another pass.
                m.peer?.sync?.cursor = 0
                pumpResync(&m, &effects)
                return
            }
            finishSyncSource(&m, &effects)
        }
    }

    func startResyncRead(_ id: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        guard let transfer = m.peer?.sync?.inFlight[id], let connection = m.peer?.connection else { return }
        let data = self.data
        let checksums = m.peer?.sync?.checksumAlgorithm != nil
        let work: @Sendable (ByteBuffer?) -> Void = { cached in
                var buffer = ByteBuffer()
                let ok: Bool
                do {
                    buffer = try cached ?? Resource.readBuffer(data, offset: transfer.range.lowerBound, count: transfer.range.count)
                    ok = true
                } catch {
                    self.logger.error("resync read at \(transfer.range): \(error)")
                    ok = false
                }
                let algorithm = self.mutable.withLockedValue { $0.peer?.sync?.checksumAlgorithm }
                let digests = ok ? algorithm.map { Resource.blockDigests(buffer, algorithm: $0) } : nil
                self.withState { (m: inout Mutable, effects: inout Effects) -> Void in
                    if ok, m.peer?.connection === connection, m.peer?.sync?.inFlight[id] != nil {
                        m.peer?.sync?.inFlight[id]?.sent = true
                        if let algorithm, let digests {
                            // Ask for the target's digests first; only differing blocks are sent.
                            m.peer?.sync?.inFlight[id]?.data = buffer
                            m.peer?.sync?.inFlight[id]?.localDigests = digests
                            connection.channel.eventLoop.execute {
                                connection.send(.checksumRequest(offset: transfer.range.lowerBound, length: UInt32(transfer.range.count), algorithm: algorithm))
                            }
                        } else {
                            m.peer?.sync?.inFlight[id]?.awaitingAcks = [transfer.range]
                            self.sendResyncData(transfer.range, parts: [transfer.range], from: buffer, &m)
                        }
                    } else {
                        m.tracker.markPeerDone(id)
                        m.peer?.sync?.inFlight[id] = nil
                        m.peer?.sync?.inFlightBytes -= transfer.range.count
                    }
                    for ready in m.tracker.markLocalDone(id) { self.startOperation(ready, &m, &effects) }
                }
        }
        effects.append {
            // Data in the page cache is sent from here; anything else is read on the thread pool.
            if !checksums, let cached = Resource.readBufferIfCached(data, offset: transfer.range.lowerBound, count: transfer.range.count) {
                work(cached)
            } else {
                self.threadPool.submit { _ in work(nil) }
            }
        }
    }

    private func receiveSyncAck(offset: UInt64, length: UInt32, status: UInt32, _ m: inout Mutable, _ effects: inout Effects) {
        let acked = offset..<(offset + UInt64(length))
        guard let sync = m.peer?.sync, sync.source,
              let (id, transfer) = sync.inFlight.first(where: { $0.value.awaitingAcks.contains(acked) })
        else { return }
        m.peer?.sync?.inFlight[id]?.awaitingAcks.removeAll { $0 == acked }
        if status != 0 {
            logger.error("the peer could not write resync data at \(acked) (error \(status))")
            m.peer?.sync?.inFlight[id]?.sent = false
        }
        guard m.peer?.sync?.inFlight[id]?.awaitingAcks.isEmpty == true else { return }
        completeResyncTransfer(id, status: transfer.sent && m.peer?.sync?.inFlight[id]?.sent == true ? 0 : 5, &m, &effects)
    }

    /// The target has (or, with csums-alg, already had) every block of the transfer.
    func completeResyncTransfer(_ id: UInt64, status: UInt32, _ m: inout Mutable, _ effects: inout Effects) {
        guard var sync = m.peer?.sync, let transfer = sync.inFlight.removeValue(forKey: id) else { return }
        sync.inFlightBytes -= transfer.range.count
        sync.acknowledgedSinceTick += transfer.range.count
        if status == 0 { sync.doneBlocks += UInt64(transfer.range.count) / Geometry.blockSize }
        m.peer?.sync = sync
        m.tracker.markPeerDone(id)
        if status == 0 { m.markInSync(transfer.range) }
        pumpResync(&m, &effects)
    }

    private func finishSyncSource(_ m: inout Mutable, _ effects: inout Effects) {
        guard let sync = m.peer?.sync, !sync.finishedSending, let connection = m.peer?.connection else { return }
        m.peer?.sync?.finishedSending = true
        let blocks = sync.doneBlocks
        let seconds = Double(ProcessSupport.monotonicNanoseconds() - sync.startedAt) / 1e9
        let same = sync.checksumAlgorithm == nil ? "" : ", \(sync.sameBlocks) found identical by \(sync.checksumAlgorithm!) and not sent"
        let summary = "resync finished as SyncSource: \(blocks) blocks (\(blocks * 4) KiB) in \(oneDecimal(seconds)) s, \(sync.movedBytes) bytes of data sent\(same)"
        logger.info("\(summary)")
        m.lastSyncSummary = summary
        m.peer?.sync = nil
        m.state.replication = .established
        _ = try? m.state.apply(.peer(role: m.state.peerRole, disk: .upToDate))
        m.superblock.generation.clearBitmapUUID()
        m.superblock.flags.remove(.crashedPrimary)
        persistSuperblock(&m)
        // The target adopts these generations when it sees syncDone: send them first.
        sendState(&m, &effects)
        connection.channel.eventLoop.execute { connection.send(.syncDone(blocks: blocks)) }
        becomePrimaryIfPending(&m, &effects)
    }

    // MARK: resync, SyncTarget side

    private func finishSyncTarget(blocks: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        guard let report = m.peer?.report else { return }
        let seconds = m.peer?.sync.map { Double(ProcessSupport.monotonicNanoseconds() - $0.startedAt) / 1e9 } ?? 0
        let moved = m.peer?.sync?.movedBytes ?? 0
        let summary = "resync finished as SyncTarget: \(blocks) blocks (\(blocks * 4) KiB) in \(oneDecimal(seconds)) s, \(moved) bytes of data received; disk UpToDate"
        logger.info("\(summary)")
        m.lastSyncSummary = summary
        m.peer?.sync = nil
        m.state.replication = .established
        if m.bitmap.outOfSyncCount > 0 { m.dirtyPages.formUnion(m.bitmap.clearAll()) }
        _ = try? m.state.apply(.attach(.upToDate))
        m.superblock.generation.adoptFromSyncSource(report.generation)
        m.superblock.flags.formUnion([.consistent, .wasUpToDate])
        m.superblock.flags.remove(.crashedPrimary)
        persistSuperblock(&m)
        sendState(&m, &effects)
        runHandler("after-resync-target")
        becomePrimaryIfPending(&m, &effects)
    }

    /// `become-primary-on` waits for this moment: connected, in sync, our disk UpToDate.
    func becomePrimaryIfPending(_ m: inout Mutable, _ effects: inout Effects) {
        guard m.pendingBecomePrimary, m.state.disk == .upToDate, m.state.replication == .established else { return }
        m.pendingBecomePrimary = false
        effects.append { self.becomePrimaryAtStartup(reason: "become-primary-on, connected and in sync") }
    }
}

struct ResourceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func oneDecimal(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}
