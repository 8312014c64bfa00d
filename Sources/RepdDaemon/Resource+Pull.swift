import NBDProtocol
import NIOCore
import PeerProtocol
import RepdCore
import RepdNet

/// Reads through the peer: a SyncTarget (Inconsistent, with an UpToDate peer) that serves
/// applications pulls the blocks it has not received yet before it reads or writes them. The
/// SyncSource answers from its disk, ordered after overlapping writes, and counts the blocks as
/// synced, so the resync never sends them again (an application write on the target, mirrored to
/// the source, cannot be overtaken by older resync data).
extension Resource {
    /// Whether `range` touches blocks this node must get from its peer first.
    func needsPull(_ range: Range<UInt64>, _ m: Mutable) -> Bool {
        guard m.state.disk == .inconsistent, m.state.readsThroughPeer, !range.isEmpty else { return false }
        // Until the source's bitmap is merged, any block may be one the source changed.
        if let sync = m.peer?.sync, !sync.source, m.peer?.peerBitmapDone != true { return true }
        let first = Int(range.lowerBound / Geometry.blockSize)
        let last = Int((range.upperBound - 1) / Geometry.blockSize)
        guard let next = m.bitmap.nextOutOfSync(fromBlock: first) else { return false }
        return next <= last
    }

    func pull(_ range: Range<UInt64>, waiter: PullWaiter, _ m: inout Mutable, _ effects: inout Effects) {
        let start = range.lowerBound - range.lowerBound % Geometry.blockSize
        let end = min(size, range.upperBound + (Geometry.blockSize - range.upperBound % Geometry.blockSize) % Geometry.blockSize)
        let aligned = start..<end
        guard let connection = m.peer?.connection else {
            failPullWaiter(waiter, "the peer is not connected and this disk is Inconsistent", &m, &effects)
            return
        }
        // One request per chunk (a reply must fit one frame); the waiter goes on when all are in.
        let id = m.nextPullID
        m.nextPullID += 1
        var requests: [PeerMessage] = []
        var offset = aligned.lowerBound
        while offset < aligned.upperBound {
            let length = min(Self.maximumPull, aligned.upperBound - offset)
            let requestID = m.nextPullID
            m.nextPullID += 1
            m.pullRequests[requestID] = (pull: id, range: offset..<(offset + length))
            requests.append(.dataRequest(id: requestID, offset: offset, length: UInt32(length)))
            offset += length
        }
        m.pulls[id] = Pull(range: aligned, waiters: [waiter], remaining: requests.count)
        connection.channel.eventLoop.execute {
            for request in requests { connection.send(request) }
        }
    }

    /// The largest range one `dataRequest` asks for.
    static let maximumPull: UInt64 = 8 << 20

    /// The source's answer: write it here (ordered like any peer write), then go on with the waiters.
    func receiveDataReply(id: UInt64, status: UInt32, payload: ByteBuffer, connection: PeerConnection,
                          _ m: inout Mutable, _ effects: inout Effects) {
        guard let request = m.pullRequests[id] else {
            logger.warning("the peer answered a data request nobody made (\(id)); ignored")
            return
        }
        guard status == 0, payload.readableBytes == request.range.count else {
            logger.error("the peer could not provide \(request.range) (status \(status), \(payload.readableBytes) bytes)")
            pulled(id, ok: false, &m, &effects)
            return
        }
        m.receivedBytes += UInt64(request.range.count)
        let (trackerID, mayStart) = m.tracker.admit(request.range, origin: .peer, peerDone: true)
        m.peerApplies[trackerID] = PeerApply(
            id: trackerID, sequence: 0, range: request.range, segments: [request.range], kind: .data, fua: false, noHole: false,
            payload: payload, isResync: true, connection: connection, pullID: id)
        if mayStart { startPeerApply(trackerID, &m, &effects) }
    }

    /// One request's blocks are on our disk (or could not be had); when all of a pull's are, the
    /// waiting requests go on.
    func pulled(_ requestID: UInt64, ok: Bool, _ m: inout Mutable, _ effects: inout Effects) {
        guard let request = m.pullRequests.removeValue(forKey: requestID), var pull = m.pulls[request.pull] else { return }
        if ok { m.markInSync(request.range) } else { pull.failed = true }
        pull.remaining -= 1
        guard pull.remaining == 0 else {
            m.pulls[request.pull] = pull
            return
        }
        m.pulls[request.pull] = nil
        let ok = !pull.failed
        for waiter in pull.waiters {
            guard ok else {
                failPullWaiter(waiter, "the blocks could not be read from the peer", &m, &effects)
                continue
            }
            switch waiter {
            case .read(let request, let command, let promise):
                let eventLoop = promise.futureResult.eventLoop
                effects.append { promise.completeWith(self.readLocally(request, command: command, on: eventLoop)) }
            case .write(let write):
                startAdmittedWrite(write, &m, &effects)
            }
        }
    }

    func failPulls(_ reason: String, _ m: inout Mutable, _ effects: inout Effects) {
        let pulls = m.pulls
        m.pulls.removeAll()
        m.pullRequests.removeAll()
        for (_, pull) in pulls {
            for waiter in pull.waiters { failPullWaiter(waiter, reason, &m, &effects) }
        }
    }

    private func failPullWaiter(_ waiter: PullWaiter, _ reason: String, _ m: inout Mutable, _ effects: inout Effects) {
        m.inFlight -= 1
        let failure = NBDFailure(.io, "\(config.name) on \(node): \(reason)")
        switch waiter {
        case .read(_, _, let promise):
            effects.append { promise.fail(failure) }
        case .write(let write):
            m.pendingWrites -= 1
            let promise = write.promise
            effects.append { promise.fail(failure) }
        }
    }

    // MARK: SyncSource side

    func receiveDataRequest(id: UInt64, offset: UInt64, length: UInt32, connection: PeerConnection,
                            _ m: inout Mutable, _ effects: inout Effects) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        let range = overflow ? 0..<0 : offset..<end
        guard !overflow, length > 0, UInt64(length) <= Self.maximumPull, range.upperBound <= size, m.state.disk == .upToDate else {
            logger.error("the peer asked for \(offset)+\(length), which this node cannot serve (disk \(m.state.disk.rawValue))")
            connection.channel.eventLoop.execute { connection.send(.dataReply(id: id, status: 5, payload: ByteBuffer())) }
            return
        }
        let (trackerID, mayStart) = m.tracker.admit(range, origin: .resync, peerDone: true)
        m.pullServes[trackerID] = PullServe(requestID: id, range: range, connection: connection)
        if mayStart { startPullServe(trackerID, &m, &effects) }
    }

    func startPullServe(_ id: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        guard let serve = m.pullServes[id] else { return }
        let data = self.data
        effects.append {
            self.threadPool.submit { _ in
                let buffer = try? Resource.readBuffer(data, offset: serve.range.lowerBound, count: serve.range.count)
                self.withState { (m: inout Mutable, effects: inout Effects) -> Void in
                    m.pullServes[id] = nil
                    if let buffer {
                        // The target writes exactly this: these blocks are synced.
                        m.markInSync(serve.range)
                        m.sentBytes += UInt64(serve.range.count)
                        m.peer?.sync?.movedBytes += UInt64(serve.range.count)
                    }
                    let reply = PeerMessage.dataReply(id: serve.requestID, status: buffer == nil ? 5 : 0, payload: buffer ?? ByteBuffer())
                    let connection = serve.connection
                    connection.channel.eventLoop.execute { connection.send(reply) }
                    for ready in m.tracker.markLocalDone(id) { self.startOperation(ready, &m, &effects) }
                    self.pumpResync(&m, &effects)
                }
            }
        }
    }
}
