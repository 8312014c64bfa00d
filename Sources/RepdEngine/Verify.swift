import NIOCore
import PeerProtocol
import RepdCore

/// An online verify in progress.
public struct VerifyState: Sendable {
    public let source: Bool
    public let algorithm: String
    public internal(set) var cursor = 0
    public let totalBlocks: UInt64
    public internal(set) var doneBlocks: UInt64 = 0
    public internal(set) var outOfSyncBlocks: UInt64 = 0
    /// Ranges read (or whose digests were asked for), by tracker id: the local digests once read.
    var requests: [UInt64: VerifyRequest] = [:]
    public let startedAt: UInt64
    /// Differing ranges found, for the log (merged, the first few hundred).
    var found: [Range<UInt64>] = []

    /// A write of the peer's crossed a comparison: compare those ranges again, not report them.
    mutating func peerWrote(_ range: Range<UInt64>) {
        for (id, request) in requests where request.range.overlaps(range) { requests[id]!.crossedByWrite = true }
    }

    init(source: Bool, algorithm: String, totalBlocks: UInt64, startedAt: UInt64) {
        self.source = source
        self.algorithm = algorithm
        self.totalBlocks = totalBlocks
        self.startedAt = startedAt
    }
}

/// One range being compared.
struct VerifyRequest: Sendable {
    let range: Range<UInt64>
    var digests: [[UInt8]]?
    /// The peer wrote into the range after our read: its digests may show its newer data.
    var crossedByWrite = false
    var attempts = 1
}

/// Online verify (VerifyS compares digests of every block with the peer's) and the digests this
/// node computes for the peer (its verify, or its checksum-based resync).
extension Engine {
    mutating func startVerify(_ id: CommandID) {
        guard let current = session, current.report != nil, state.connection == .connected else {
            return reply(id, false, "verify needs a connected peer (connection is \(state.connection.rawValue))")
        }
        guard state.replication == .established, current.resync == nil, current.verify == nil else {
            return reply(id, false, "verify: a resync or verify is running (\(state.replication.rawValue))")
        }
        guard state.disk == .upToDate, state.peerDisk == .upToDate else {
            return reply(id, false, "verify compares two UpToDate disks; here \(state.disk.rawValue), peer \(state.peerDisk.rawValue)")
        }
        let algorithm = configuration.verifyAlgorithm ?? "crc32c"
        guard EngineConfiguration.digestAlgorithms.contains(algorithm) else {
            return reply(id, false, "verify-alg \(algorithm) is not supported; use one of \(EngineConfiguration.digestAlgorithms.joined(separator: ", "))")
        }
        let total = exportSize / Geometry.blockSize
        session!.verify = VerifyState(source: true, algorithm: algorithm, totalBlocks: total, startedAt: now)
        state.replication = .verifySource
        send(.verifyNotice(running: true, blocks: total))
        log(.info, "online verify started (verify-alg \(algorithm)): \(total) blocks of 4 KiB")
        reply(id, true, "online verify started with \(algorithm) over \(Geometry.kibibytes(ofBlocks: total)) KiB")
        pumpVerify()
    }

    mutating func receiveVerifyNotice(running: Bool, blocks reported: UInt64) {
        let blocks = min(reported, configuration.usableSize / Geometry.blockSize)
        if running {
            if let mine = session?.verify, mine.source {
                // Both nodes started a verify at once: the node that resolves conflicts keeps its
                // own, the other yields (found by the simulator, seed 5460: both became VerifyT).
                if session!.localResolves {
                    return log(.info, "the peer started an online verify too; this node resolves conflicts and keeps its own")
                }
                log(.info, "the peer started an online verify too and resolves conflicts: this node's verify yields to the peer's")
                for id in mine.requests.keys.sorted() { tracker.markPeerDone(id) }
            }
            session?.verify = VerifyState(source: false, algorithm: "", totalBlocks: blocks, startedAt: now)
            state.replication = .verifyTarget
            log(.info, "the peer started an online verify")
        } else {
            session?.verify = nil
            if state.replication == .verifyTarget { state.replication = .established }
            link.lastSyncSummary = "online verify by the peer: \(blocks) blocks (\(Geometry.kibibytes(ofBlocks: blocks)) KiB) out of sync"
            log(.info, "the peer finished its online verify: \(blocks) blocks out of sync")
        }
    }

    mutating func pumpVerify() {
        guard var verify = session?.verify, verify.source else { return }
        let run = EngineConfiguration.blocksPerDigestRequest(verify.algorithm)
        let blocks = Int(exportSize / Geometry.blockSize)
        while verify.requests.count < 512, verify.cursor < blocks {
            let first = verify.cursor
            let last = min(blocks, first + run)
            verify.cursor = last
            let range = UInt64(first) * Geometry.blockSize..<UInt64(last) * Geometry.blockSize
            let (id, mayStart) = tracker.admit(range, origin: .resync, peerDone: false)
            operations[id] = .verifyRead(range: range)
            verify.requests[id] = VerifyRequest(range: range)
            session!.verify = verify
            if mayStart { startVerifyRead(id) }
            guard let updated = session?.verify else { return }
            verify = updated
        }
        session!.verify = verify
        if verify.requests.isEmpty && verify.cursor >= blocks { finishVerify() }
    }

    mutating func startVerifyRead(_ id: UInt64) {
        guard case .verifyRead(let range)? = operations[id], let algorithm = session?.verify?.algorithm else {
            operations[id] = nil
            tracker.markPeerDone(id)
            releaseAfterLocalDone(id)
            return
        }
        let token = newToken()
        pending[token] = .tracked(id)
        emit(.readLocal(token, range: range, kind: .digests(algorithm: algorithm)))
    }

    mutating func verifyReadDone(_ id: UInt64, range: Range<UInt64>, _ result: Result<ReadOutcome, IOFailure>) {
        operations[id] = nil
        // The request is queued before the writes that waited for this read are released, so the
        // peer digests the same data we did.
        defer { releaseAfterLocalDone(id) }
        guard let verify = session?.verify, verify.requests[id] != nil else {
            tracker.markPeerDone(id)
            return
        }
        guard case .success(let outcome) = result, let digests = outcome.digests else {
            log(.error, "verify: cannot read \(range); marked out of sync")
            verifyResult(id, differing: [range])
            return
        }
        session!.verify!.requests[id]!.digests = digests
        send(.checksumRequest(offset: range.lowerBound, length: UInt32(range.count), algorithm: verify.algorithm))
    }

    mutating func verifyResult(_ id: UInt64, differing: [Range<UInt64>]) {
        guard let request = session?.verify?.requests.removeValue(forKey: id) else { return }
        tracker.markPeerDone(id)
        session!.verify!.doneBlocks += UInt64(request.range.count) / Geometry.blockSize
        for range in differing {
            markOutOfSync(range)
            session!.verify!.outOfSyncBlocks += UInt64(range.count) / Geometry.blockSize
            var found = session!.verify!.found
            if let last = found.last, last.upperBound == range.lowerBound {
                found[found.count - 1] = last.lowerBound..<range.upperBound
            } else if found.count < 200 {
                found.append(range)
            }
            session!.verify!.found = found
        }
        pumpVerify()
    }

    mutating func finishVerify() {
        guard let verify = session?.verify else { return }
        session!.verify = nil
        state.replication = .established
        let seconds = Double(now - min(now, verify.startedAt)) / 1e9
        let found = verify.outOfSyncBlocks
        for range in verify.found {
            log(.warning, "verify: out of sync: \(range.lowerBound)+\(range.count) (bytes \(range.lowerBound)..<\(range.upperBound))")
        }
        let advice = found == 0 ? "" : "; repair with `repd invalidate-remote --reset-bitmap=no \(configuration.resource)` on the node whose data is right (or `invalidate --reset-bitmap=no` on the other)"
        let summary = "online verify done in \(oneDecimal(seconds)) s: \(verify.doneBlocks) blocks compared, \(found) out of sync (\(Geometry.kibibytes(ofBlocks: found)) KiB)\(advice)"
        log(.info, summary)
        link.lastSyncSummary = summary
        link.lastVerify = (found * Geometry.blockSize / 1024, unixTime)
        commitSuperblock()
        if found > 0 { runHandler("out-of-sync", ["REPD_OUT_OF_SYNC_BLOCKS": "\(found)"]) }
        send(.verifyNotice(running: false, blocks: found))
    }

    // MARK: digests for the peer

    mutating func receiveChecksumRequest(offset: UInt64, length: UInt32, algorithm: String) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        guard !overflow, EngineConfiguration.digestAlgorithms.contains(algorithm), length > 0, length % UInt32(Geometry.blockSize) == 0,
              Int(length) / Int(Geometry.blockSize) <= EngineConfiguration.blocksPerDigestRequest(algorithm),
              end <= configuration.usableSize, let connection = session?.connection
        else {
            log(.error, "the peer asked for digests of \(offset)+\(length) with \(algorithm): not a valid request; disconnecting")
            if let connection = session?.connection { emit(.dropConnection(connection, reason: "invalid checksum request from the peer")) }
            return
        }
        _ = connection
        let range = offset..<end
        let (id, mayStart) = tracker.admit(range, origin: .peer, peerDone: true)
        operations[id] = .digestJob(range: range, algorithm: algorithm)
        if mayStart { startDigestJob(id) }
    }

    mutating func startDigestJob(_ id: UInt64) {
        guard case .digestJob(let range, let algorithm)? = operations[id] else { return }
        guard diskAttached else { return digestJobDone(id, range: range, .failure(IOFailure(.io, "no disk"))) }
        let token = newToken()
        pending[token] = .tracked(id)
        emit(.readLocal(token, range: range, kind: .digests(algorithm: algorithm)))
    }

    mutating func digestJobDone(_ id: UInt64, range: Range<UInt64>, _ result: Result<ReadOutcome, IOFailure>) {
        operations[id] = nil
        // An unreadable range answers with an empty digest: the requester marks it out of sync.
        let digest = (try? result.get().digests)?.flatMap { $0 } ?? []
        send(.checksumReply(offset: range.lowerBound, length: UInt32(range.count), digest: digest))
        releaseAfterLocalDone(id)
    }

    /// The blocks of `range` whose digests differ (adjacent ones merged).
    static func differingRanges(_ range: Range<UInt64>, local: [[UInt8]], remote: [UInt8], algorithm: String) -> [Range<UInt64>] {
        let length = EngineConfiguration.digestLength(algorithm)
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

    mutating func receiveChecksumReply(offset: UInt64, length: UInt32, digest: [UInt8]) {
        if let verify = session?.verify, verify.source,
           let (id, request) = verify.requests.first(where: { $0.value.range.lowerBound == offset && $0.value.range.count == Int(length) }),
           let local = request.digests {
            let differing = Self.differingRanges(request.range, local: local, remote: digest, algorithm: verify.algorithm)
            if !differing.isEmpty && request.crossedByWrite && request.attempts < 8 {
                // An application write went by while we compared: compare again.
                session!.verify!.requests[id] = nil
                tracker.markPeerDone(id)
                let (retry, mayStart) = tracker.admit(request.range, origin: .resync, peerDone: false)
                operations[retry] = .verifyRead(range: request.range)
                session!.verify!.requests[retry] = VerifyRequest(range: request.range, attempts: request.attempts + 1)
                if mayStart { startVerifyRead(retry) }
                return
            }
            verifyResult(id, differing: differing)
            return
        }
        if let sync = session?.resync, sync.source, let algorithm = sync.checksumAlgorithm,
           let (id, transfer) = sync.transfers.first(where: { $0.value.range.lowerBound == offset && $0.value.range.count == Int(length) }),
           case .comparing(let buffer, let local) = transfer.phase {
            if transfer.crossed {
                // A write went by since the read: the blocks stay marked and go in a later pass.
                session!.resync!.transfers[id] = nil
                session!.resync!.inFlightBytes -= transfer.range.count
                tracker.markPeerDone(id)
                pumpResync()
                return
            }
            let differing = Self.differingRanges(transfer.range, local: local, remote: digest, algorithm: algorithm)
            let same = UInt64(transfer.range.count - differing.reduce(0) { $0 + $1.count }) / Geometry.blockSize
            session!.resync!.sameBlocks += same
            if differing.isEmpty {
                // The target holds these blocks already; a barrier makes sure it holds them durably.
                transferAcknowledged(id, ok: true, threshold: session!.nextSequence)
                return
            }
            sendResyncData(id, range: transfer.range, parts: differing, from: buffer)
            return
        }
        log(.warning, "the peer sent digests for \(offset)+\(length) nobody asked for; ignored")
    }
}
