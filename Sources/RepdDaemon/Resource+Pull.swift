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
        let id = m.nextPullID
        m.nextPullID += 1
        m.pulls[id] = Pull(range: aligned, waiters: [waiter])
        connection.channel.eventLoop.execute {
            connection.send(.dataRequest(id: id, offset: aligned.lowerBound, length: UInt32(aligned.count)))
        }
    }

    /// The source's answer: write it here (ordered like any peer write), then go on with the waiters.
    func receiveDataReply(id: UInt64, status: UInt32, payload: ByteBuffer, connection: PeerConnection,
                          _ m: inout Mutable, _ effects: inout Effects) {
        guard let pull = m.pulls[id] else {
            logger.warning("the peer answered a data request nobody made (\(id)); ignored")
            return
        }
        guard status == 0, payload.readableBytes == pull.range.count else {
            logger.error("the peer could not provide \(pull.range) (status \(status), \(payload.readableBytes) bytes)")
            pulled(id, ok: false, &m, &effects)
            return
        }
        m.receivedBytes += UInt64(pull.range.count)
        let (trackerID, mayStart) = m.tracker.admit(pull.range, origin: .peer, peerDone: true)
        m.peerApplies[trackerID] = PeerApply(
            id: trackerID, sequence: 0, range: pull.range, segments: [pull.range], kind: .data, fua: false, noHole: false,
            payload: payload, isResync: true, connection: connection, pullID: id)
        if mayStart { startPeerApply(trackerID, &m, &effects) }
    }

    /// The pulled blocks are on our disk (or could not be had): serve the waiting requests.
    func pulled(_ id: UInt64, ok: Bool, _ m: inout Mutable, _ effects: inout Effects) {
        guard let pull = m.pulls.removeValue(forKey: id) else { return }
        if ok { m.markInSync(pull.range) }
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
        let range = offset..<(offset + UInt64(length))
        guard length > 0, UInt64(length) <= UInt64(NBDLimits.maximumPayload), range.upperBound <= size, m.state.disk == .upToDate else {
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
