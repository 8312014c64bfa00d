import NIOCore
import PeerProtocol
import RepdCore

/// A request waiting for blocks pulled from the SyncSource.
enum PullWaiter: Sendable {
    case read(ClientRequestID, ClientReadKind, Range<UInt64>)
    case write(PendingWrite)
}

/// Blocks requested from the SyncSource (`dataRequest`), and who waits for them.
struct Pull: Sendable {
    let range: Range<UInt64>
    var waiters: [PullWaiter]
    /// Requests not answered yet, and whether one failed.
    var remaining: Int
    var failed = false
    /// Requests for overlapping blocks that came while this pull was out: they look again once it is in.
    var deferred: [PullWaiter] = []
}

/// A SyncTarget's pulls in flight.
public struct PullTable: Sendable {
    var pulls: [UInt64: Pull] = [:]
    var requests: [UInt64: (pull: UInt64, range: Range<UInt64>)] = [:]
    var nextID: UInt64 = 1

    public var count: Int { pulls.count }

    mutating func takeID() -> UInt64 {
        defer { nextID += 1 }
        return nextID
    }
}

/// Reads through the peer: a SyncTarget (Inconsistent, with an UpToDate peer) that serves
/// applications pulls the blocks it has not received yet before it reads or writes them. The
/// SyncSource answers from its disk, ordered after overlapping writes, and counts the blocks as
/// synced once the target has them durably, so the resync never sends them again (an application
/// write on the target, mirrored to the source, cannot be overtaken by older resync data).
extension Engine {
    /// The parts of `range` whose blocks are marked out of sync here.
    func outOfSyncSegments(_ range: Range<UInt64>) -> [Range<UInt64>] {
        var segments: [Range<UInt64>] = []
        let first = Int(range.lowerBound / Geometry.blockSize)
        let end = Int((range.upperBound + Geometry.blockSize - 1) / Geometry.blockSize)
        var block = first
        while block < end, let next = metadata.bitmap.nextOutOfSync(fromBlock: block), next < end {
            let stop = min(end, metadata.bitmap.nextInSync(fromBlock: next))
            segments.append(max(range.lowerBound, UInt64(next) * Geometry.blockSize)..<min(range.upperBound, UInt64(stop) * Geometry.blockSize))
            block = stop
        }
        return segments
    }

    /// The largest range one `dataRequest` asks for.
    static let maximumPull: UInt64 = 8 << 20

    /// Whether `range` touches blocks this node must get from its peer first.
    func needsPull(_ range: Range<UInt64>) -> Bool {
        guard state.disk == .inconsistent, state.readsThroughPeer, !range.isEmpty else { return false }
        // Until the source's bitmap is merged, any block may be one the source changed.
        if let sync = session?.resync, !sync.source, session?.peerBitmapDone != true { return true }
        let first = Int(range.lowerBound / Geometry.blockSize)
        let last = Int((range.upperBound - 1) / Geometry.blockSize)
        guard let next = metadata.bitmap.nextOutOfSync(fromBlock: first) else { return false }
        return next <= last
    }

    mutating func pull(_ range: Range<UInt64>, waiter: PullWaiter) {
        let start = range.lowerBound - range.lowerBound % Geometry.blockSize
        let end = min(configuration.usableSize, range.upperBound + (Geometry.blockSize - range.upperBound % Geometry.blockSize) % Geometry.blockSize)
        guard session != nil else {
            return failPullWaiter(waiter, "the peer is not connected and this disk is Inconsistent")
        }
        if let (earlier, _) = pulls.pulls.first(where: { $0.value.range.overlaps(start..<end) }) {
            // Pulls of the same blocks never overlap: a later copy could land after an application
            // write that the earlier one let through. This request looks again once that one is in.
            pulls.pulls[earlier]!.deferred.append(waiter)
            return
        }
        // One request per chunk (a reply must fit one frame); the waiter goes on when all are in.
        let id = pulls.takeID()
        var count = 0
        var offset = start
        while offset < end {
            let length = min(Self.maximumPull, end - offset)
            let requestID = pulls.takeID()
            pulls.requests[requestID] = (pull: id, range: offset..<(offset + length))
            send(.dataRequest(id: requestID, offset: offset, length: UInt32(length)))
            offset += length
            count += 1
        }
        pulls.pulls[id] = Pull(range: start..<end, waiters: [waiter], remaining: count)
    }

    /// The source's answer: write it here (ordered like any peer write), then go on with the waiters.
    mutating func receiveDataReply(id: UInt64, status: UInt32, payload: ByteBuffer) {
        if remoteRequests[id] != nil { return remoteReadReplied(id, status: status, payload: payload) }
        guard let request = pulls.requests[id] else {
            // Pulls of a disk that was detached meanwhile are forgotten; anything else is the peer's mistake.
            if diskAttached && diskFailure == nil { log(.warning, "the peer answered a data request nobody made (\(id)); ignored") }
            return
        }
        guard status == 0, payload.readableBytes == request.range.count else {
            log(.error, "the peer could not provide \(request.range) (status \(status), \(payload.readableBytes) bytes)")
            return pulled(id, ok: false)
        }
        let write = PeerWrite(sequence: 0, offset: request.range.lowerBound, length: UInt32(request.range.count), kind: .data, payload: payload)
        receiveWrite(write, origin: .pull(requestID: id))
    }

    /// One request's blocks are on our disk (or could not be had); when all of a pull's are, the
    /// waiting requests go on.
    mutating func pulled(_ requestID: UInt64, ok: Bool) {
        guard let request = pulls.requests.removeValue(forKey: requestID), var pull = pulls.pulls[request.pull] else { return }
        if ok { metadata.markInSync(request.range) } else { pull.failed = true }
        pull.remaining -= 1
        guard pull.remaining == 0 else {
            pulls.pulls[request.pull] = pull
            return
        }
        pulls.pulls[request.pull] = nil
        for waiter in pull.waiters {
            guard !pull.failed else {
                failPullWaiter(waiter, "the blocks could not be read from the peer")
                continue
            }
            switch waiter {
            case .read(let client, let kind, let range):
                readFromDisk(client, kind: kind, range: range)
            case .write(let write):
                startAdmittedWrite(write)
            }
        }
        for waiter in pull.deferred { retryAfterPull(waiter) }
    }

    /// A request that waited for an overlapping pull: pull what is still missing, or go on.
    mutating func retryAfterPull(_ waiter: PullWaiter) {
        switch waiter {
        case .read(let client, let kind, let range):
            if needsPull(range) { pull(range, waiter: waiter) } else { readFromDisk(client, kind: kind, range: range) }
        case .write(let write):
            if needsPull(write.write.range) { pull(write.write.range, waiter: waiter) } else { startAdmittedWrite(write) }
        }
    }

    mutating func failPulls(_ reason: String) {
        let waiting = pulls.pulls
        pulls.pulls.removeAll()
        pulls.requests.removeAll()
        for (_, pull) in waiting {
            for waiter in pull.waiters + pull.deferred { failPullWaiter(waiter, reason) }
        }
    }

    mutating func failPullWaiter(_ waiter: PullWaiter, _ reason: String) {
        let message = "\(configuration.resource) on \(configuration.node): \(reason)"
        switch waiter {
        case .read(let client, _, _):
            inFlight -= 1
            emit(.complete(client, .failed(.io, message)))
        case .write(let write):
            failPendingWrite(write, .io, message)
        }
    }

    // MARK: SyncSource side

    mutating func receiveDataRequest(id: UInt64, offset: UInt64, length: UInt32) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        guard !overflow, length > 0, UInt64(length) <= Self.maximumPull, end <= configuration.usableSize, state.disk == .upToDate else {
            log(.error, "the peer asked for \(offset)+\(length), which this node cannot serve (disk \(state.disk.rawValue))")
            send(.dataReply(id: id, status: 5, payload: ByteBuffer()))
            return
        }
        let range = offset..<end
        let (trackerID, mayStart) = tracker.admit(range, origin: .resync, peerDone: true)
        operations[trackerID] = .pullServe(requestID: id, range: range)
        if session?.resync?.source == true && state.peerHasDisk {
            // From now on the resync leaves these blocks to the pull: data it read before for them
            // (a digest comparison pending) is not sent.
            session!.resync!.transfers[trackerID] = ResyncTransfer(range: range, phase: .serving)
            crossResyncTransfers(range)
        }
        if mayStart { startPullServe(trackerID) }
    }

    mutating func startPullServe(_ id: UInt64) {
        guard case .pullServe(let requestID, let range)? = operations[id] else { return }
        guard diskAttached else { return pullServeDone(id, requestID: requestID, range: range, .failure(IOFailure(.io, "no disk"))) }
        let token = newToken()
        pending[token] = .tracked(id)
        emit(.readLocal(token, range: range, kind: .data))
    }

    mutating func pullServeDone(_ id: UInt64, requestID: UInt64, range: Range<UInt64>, _ result: Result<ReadOutcome, IOFailure>) {
        operations[id] = nil
        if case .success(let outcome) = result, let data = outcome.data {
            // The target writes exactly this: the resync must not send these blocks again (its
            // older copy could overtake the target's own writes to them), and once durable there
            // they are synced.
            let threshold = session?.nextSequence ?? 0
            if !state.peerHasDisk {
                // A Diskless peer's read: nothing lands on a disk there.
            } else if session?.resync?.transfers[id] != nil {
                session!.resync!.transfers[id]!.phase = .acknowledged(threshold: threshold)
                session!.resync!.awaitingDurabilityBytes += range.count
            } else {
                session?.markInSyncWhenDurable(range, threshold: threshold)
            }
            counters.sentBytes += UInt64(range.count)
            session?.resync?.movedBytes += UInt64(range.count)
            send(.dataReply(id: requestID, status: 0, payload: data))
        } else {
            session?.resync?.transfers[id] = nil
            send(.dataReply(id: requestID, status: 5, payload: ByteBuffer()))
        }
        releaseAfterLocalDone(id)
        pumpResync()
    }
}
