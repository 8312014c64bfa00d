import NBDProtocol
import NIOCore
import NIOPosix
import PeerProtocol
import RepdCore
import RepdNet
import RepdSystem

/// The data path. Reads are served from the local disk. A write (or trim, or zeroing) is
/// admitted in one locked step that orders it against overlapping writes, then goes to the
/// local disk (thread pool) and, when the peer is attached, to the peer at the same time. It
/// completes as the protocol says: C when both disks have it, B when the peer received it,
/// A when it is sent.
extension Resource: NBDBackend {
    public func exports() -> [NBDExportInfo] {
        let flags: NBD.TransmissionFlags = [
            .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendFastZero, .sendCache, .canMultiConn, .sendDF,
        ]
        let size = mutable.withLockedValue { $0.exportSize }
        return [NBDExportInfo(name: config.name, description: "repd resource \(config.name) on \(node)", size: size, flags: flags)]
    }

    public func report(_ message: String, connection: String) {
        logger.warning("NBD \(connection): \(message)")
    }

    public func execute(_ request: NBDRequest, payload: ByteBuffer?, session: NBDSession, on eventLoop: any EventLoop) -> EventLoopFuture<NBDOutcome> {
        guard let command = request.command else {
            return eventLoop.makeFailedFuture(NBDFailure(.invalid, "unknown command"))
        }
        switch command {
        case .write, .trim, .writeZeroes:
            return submitWrite(request, command: command, payload: payload, on: eventLoop)
        case .flush:
            return submitFlush(on: eventLoop)
        default:
            return submitRead(request, command: command, on: eventLoop)
        }
    }

    // MARK: reads

    private func submitRead(_ request: NBDRequest, command: NBD.Command, on eventLoop: any EventLoop) -> EventLoopFuture<NBDOutcome> {
        let promise = eventLoop.makePromise(of: NBDOutcome.self)
        let outcome: Result<Bool, NBDFailure> = withState { (m: inout Mutable, effects: inout Effects) -> Result<Bool, NBDFailure> in
            if m.shuttingDown { return .failure(NBDFailure(.shutdown, "the resource is going down")) }
            if command != .cache && !m.state.servesReads {
                return .failure(NBDFailure(.io, "\(config.name) has no readable data on \(node) (disk \(m.state.disk.rawValue))"))
            }
            m.inFlight += 1
            m.applicationRequests &+= 1
            let range = request.offset..<(request.offset + UInt64(request.length))
            if command == .read, needsPull(range, m) {
                // Not resynced yet: the blocks come from the peer first.
                pull(range, waiter: .read(request, command, promise), &m, &effects)
                return .success(true)
            }
            return .success(false)
        }
        switch outcome {
        case .failure(let refusal): return eventLoop.makeFailedFuture(refusal)
        case .success(true): return promise.futureResult
        case .success(false): break
        }
        if command == .read, request.length <= Self.inlineReadLimit,
           let buffer = Resource.readBufferIfCached(data, offset: request.offset, count: Int(request.length)) {
            // In the page cache: answered on the event loop, without a trip through the thread pool.
            mutable.withLockedValue { m in
                m.inFlight -= 1
                m.readBytes += UInt64(request.length)
            }
            promise.succeed(.data(buffer))
            return promise.futureResult
        }
        let future: EventLoopFuture<NBDOutcome>
        if command == .blockStatus, mutable.withLockedValue({ $0.state.disk == .inconsistent }) {
            // The local file's holes say nothing about data not resynced yet: report it all as data.
            mutable.withLockedValue { $0.inFlight -= 1 }
            let flags: UInt32 = 0
            future = eventLoop.makeSucceededFuture(.extents([(length: request.length, flags: flags)]))
        } else {
            future = readLocally(request, command: command, on: eventLoop)
        }
        promise.completeWith(future)
        return promise.futureResult
    }

    /// Serves a read from the local disk (the caller counted it in flight).
    func readLocally(_ request: NBDRequest, command: NBD.Command, on eventLoop: any EventLoop) -> EventLoopFuture<NBDOutcome> {
        let data = self.data
        let size = self.size
        let future: EventLoopFuture<NBDOutcome> = threadPool.runIfActive(eventLoop: eventLoop) { () throws -> NBDOutcome in
            do {
                switch command {
                case .read:
                    return .data(try Resource.readBuffer(data, offset: request.offset, count: Int(request.length)))
                case .cache:
                    data.prefetch(offset: request.offset, length: UInt64(request.length))
                    return .done
                case .blockStatus:
                    var runs = data.allocationMap(offset: request.offset, length: UInt64(request.length), end: size)
                    if request.flags.contains(.requestOne) { runs = Array(runs.prefix(1)) }
                    let holeFlags: UInt32 = NBD.stateHole | NBD.stateZero
                    var extents: [(length: UInt32, flags: UInt32)] = []
                    for run in runs {
                        let flags: UInt32 = run.hole ? holeFlags : 0
                        extents.append((length: UInt32(run.length), flags: flags))
                    }
                    return .extents(extents)
                default:
                    throw NBDFailure(.invalid, "unexpected \(command)")
                }
            } catch let error as SystemError {
                self.logger.error("\(command) at \(request.offset)+\(request.length): \(error)")
                throw NBDFailure(.io, "\(error)")
            }
        }
        future.whenComplete { result in
            self.mutable.withLockedValue { m in
                m.inFlight -= 1
                if command == .read, case .success = result { m.readBytes += UInt64(request.length) }
            }
        }
        return future
    }

    // MARK: writes

    private func submitWrite(_ request: NBDRequest, command: NBD.Command, payload: ByteBuffer?, on eventLoop: any EventLoop) -> EventLoopFuture<NBDOutcome> {
        let promise = eventLoop.makePromise(of: NBDOutcome.self)
        let range = request.offset..<(request.offset + UInt64(request.length))
        let kind: PeerWrite.Kind = command == .write ? .data : command == .trim ? .trim : .zeroes
        let write = WriteRequest(
            range: range, kind: kind, fua: request.flags.contains(.fua), noHole: request.flags.contains(.noHole),
            fastZero: request.flags.contains(.fastZero), payload: payload, promise: promise)
        let refusal: NBDFailure? = withState { (m: inout Mutable, effects: inout Effects) -> NBDFailure? in
            if m.shuttingDown { return NBDFailure(.shutdown, "the resource is going down") }
            if !m.state.acceptsWrites {
                return NBDFailure(.permission, "\(config.name) is \(m.state.role.rawValue) with disk \(m.state.disk.rawValue) on \(node): writes need a Primary with an UpToDate disk")
            }
            if range.upperBound > m.exportSize {
                return NBDFailure(.noSpace, "write at \(request.offset)+\(request.length) is beyond the replicated size \(m.exportSize)")
            }
            m.inFlight += 1
            m.applicationRequests &+= 1
            m.pendingWrites += 1
            if needsPull(range, m) {
                // Blocks not resynced yet are pulled first, so that the write lands on current data.
                pull(range, waiter: .write(write), &m, &effects)
            } else {
                startAdmittedWrite(write, &m, &effects)
            }
            return nil
        }
        if let refusal { promise.fail(refusal) }
        return promise.futureResult
    }

    /// Records the write's extents in the activity log (waiting for it if needed), then admits it.
    func startAdmittedWrite(_ write: WriteRequest, _ m: inout Mutable, _ effects: inout Effects) {
        if m.al.begin(ActivityLog.extents(of: write.range)) {
            admitLocalWrite(write, &m, &effects)
        } else {
            // Its extent is not in the activity log yet: the write waits until it is on disk.
            m.alWaiting.append(write)
            driveActivityLog(&m, &effects)
        }
    }

    /// Orders the write against overlapping ones and starts it when nothing overlaps (it holds its
    /// activity-log extents).
    func admitLocalWrite(_ request: WriteRequest, _ m: inout Mutable, _ effects: inout Effects) {
        let replicate = m.replicating
        let (id, mayStart) = m.tracker.admit(request.range, origin: .local, peerDone: !replicate)
        let write = LocalWrite(
            id: id, range: request.range, kind: request.kind, fua: request.fua, noHole: request.noHole,
            fastZero: request.fastZero, payload: request.payload, promise: request.promise, replicated: replicate,
            startedAt: ProcessSupport.monotonicNanoseconds())
        m.localWrites[id] = write
        if !replicate {
            // The peer misses this write: remember its blocks for the resync.
            m.markOutOfSync(request.range)
        }
        if mayStart { startLocalWrite(id, &m, &effects) }
    }

    /// Writes the next activity-log transaction, if writes wait for one and none is being written.
    /// Extents it evicts lose their protection, so the bitmap pages are written before, and made
    /// durable together with the transaction's block.
    func driveActivityLog(_ m: inout Mutable, _ effects: inout Effects) {
        guard let prepared = m.al.prepareTransaction() else { return }
        if !prepared.evicted.isEmpty {
            do {
                try metadata.writeBitmapPages(m.bitmap, pages: m.dirtyPages.sorted())
                m.bitmapWrites += UInt64(m.dirtyPages.count)
                m.dirtyPages.removeAll()
            } catch {
                // The evicted extents would lose their protection: fail this transaction instead.
                logger.error("cannot write the bitmap before evicting activity-log extents: \(error)")
                effects.append { self.activityLogWritten(error) }
                return
            }
        }
        let metadata = self.metadata
        let evicts = !prepared.evicted.isEmpty
        effects.append {
            self.threadPool.submit { _ in
                var failure: (any Error)?
                do {
                    if evicts { try metadata.sync() }
                    try metadata.writeActivityLog(prepared.transaction, ringSlot: prepared.ringSlot)
                } catch {
                    failure = error
                }
                self.activityLogWritten(failure)
            }
        }
    }

    func activityLogWritten(_ failure: (any Error)?) {
        withState { (m: inout Mutable, effects: inout Effects) -> Void in
            let waiting = m.alWaiting
            m.alWaiting.removeAll()
            if let failure {
                logger.error("cannot write the activity log: \(failure); failing the writes that waited for it")
                m.al.failed()
                for write in waiting {
                    m.inFlight -= 1
                    m.pendingWrites -= 1
                    let promise = write.promise
                    effects.append { promise.fail(NBDFailure(.io, "activity log write failed: \(failure)")) }
                }
                return
            }
            m.al.committed()
            m.alWrites += 1
            for write in waiting {
                if m.al.begin(ActivityLog.extents(of: write.range)) {
                    admitLocalWrite(write, &m, &effects)
                } else {
                    m.alWaiting.append(write)
                }
            }
            driveActivityLog(&m, &effects)
        }
    }

    /// Sends the write to the peer (in admission order, under the lock) and starts the local I/O.
    func startLocalWrite(_ id: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        guard var write = m.localWrites[id] else { return }
        if write.replicated, var peer = m.peer {
            let sequence = peer.nextSequence
            peer.nextSequence += 1
            peer.writesBySequence[sequence] = id
            m.peer = peer
            write.sequence = sequence
            let message = PeerMessage.write(PeerWrite(
                sequence: sequence, offset: write.range.lowerBound, length: UInt32(write.range.count), kind: write.kind,
                fua: write.fua, noHole: write.noHole, payload: write.kind == .data ? write.payload : nil))
            m.sentBytes += UInt64(write.kind == .data ? write.range.count : 0)
            let connection = peer.connection
            let protocolA = config.net.protocol == .A
            connection.channel.eventLoop.execute {
                let sent = connection.send(message)
                if protocolA {
                    sent.whenComplete { _ in self.peerReceived(sequence: sequence, connection: connection) }
                }
            }
        } else if write.replicated {
            // The link went away between admission and start.
            write.replicated = false
            m.markOutOfSync(write.range)
            m.tracker.markPeerDone(id)
            write.peerDone = true
        }
        m.localWrites[id] = write
        let data = self.data
        let started = write
        let work: @Sendable (NIOThreadPool.WorkItemState) -> Void = { state in
            guard state == .active else {
                self.localWriteFinished(id, error: NBDFailure(.shutdown, "thread pool stopped"))
                return
            }
            do {
                try Self.apply(kind: started.kind, range: started.range, payload: started.payload, fua: started.fua,
                               noHole: started.noHole, fastZero: started.fastZero, to: data)
                self.localWriteFinished(id, error: nil)
            } catch let error as NBDFailure {
                self.localWriteFinished(id, error: error)
            } catch {
                self.logger.error("write at \(started.range.lowerBound)+\(started.range.count): \(error)")
                let code: NBDError = (error as? SystemError)?.errno == .noSpace ? .noSpace : .io
                self.localWriteFinished(id, error: NBDFailure(code, "\(error)"))
            }
        }
        let inline = Self.writesInline(kind: started.kind, fua: started.fua, count: started.range.count, replicated: started.replicated)
        effects.append {
            if inline { work(.active) } else { self.threadPool.submit(work) }
        }
    }

    /// Small buffered writes go to the page cache on the calling thread: a hand-off to the thread
    /// pool (two thread wake-ups) costs more than the copy. Large ones, FUA, trim and zeroing (which
    /// may wait for the disk) go to the pool.
    /// When the write is also replicated, large ones go to the pool all the same: the event loop
    /// then keeps receiving and sending while another core copies into the page cache.
    static func writesInline(kind: PeerWrite.Kind, fua: Bool, count: Int, replicated: Bool) -> Bool {
        kind == .data && !fua && count <= Int(replicated ? inlineLimit : inlineWriteLimit)
    }

    /// Requests up to this size are tried on the calling thread first (cached reads; small writes).
    static let inlineLimit: UInt32 = 128 * 1024
    /// Cached reads never wait for the disk: up to 1 MiB is copied on the event loop.
    static let inlineReadLimit: UInt32 = 1 << 20
    static let inlineWriteLimit: UInt32 = 1 << 20

    /// Reads `count` bytes at `offset` if they are all in the page cache; nil otherwise.
    static func readBufferIfCached(_ data: BlockFile, offset: UInt64, count: Int) -> ByteBuffer? {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var ok = false
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { (p: UnsafeMutableRawBufferPointer) -> Int in
            ok = data.readIfCached(into: UnsafeMutableRawBufferPointer(rebasing: p[0..<count]), at: offset)
            return ok ? count : 0
        }
        return ok ? buffer : nil
    }

    /// Reads `count` bytes at `offset` into a new buffer (runs on the thread pool).
    static func readBuffer(_ data: BlockFile, offset: UInt64, count: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { (p: UnsafeMutableRawBufferPointer) throws -> Int in
            try data.read(into: UnsafeMutableRawBufferPointer(rebasing: p[0..<count]), at: offset)
            return count
        }
        return buffer
    }

    /// Applies a write, trim or zeroing to the local disk (runs on the thread pool).
    static func apply(kind: PeerWrite.Kind, range: Range<UInt64>, payload: ByteBuffer?, payloadOffset: Int = 0, fua: Bool, noHole: Bool,
                      fastZero: Bool, to data: BlockFile) throws {
        switch kind {
        case .data:
            guard let payload else { throw NBDFailure(.invalid, "write without data") }
            let end = payloadOffset + range.count
            try payload.withUnsafeReadableBytes { (p: UnsafeRawBufferPointer) throws -> Void in
                try data.write(UnsafeRawBufferPointer(rebasing: p[payloadOffset..<end]), at: range.lowerBound)
            }
        case .trim:
            try data.discard(offset: range.lowerBound, length: UInt64(range.count))
        case .zeroes:
            if fastZero {
                do throws(SystemError) {
                    try data.zeroFast(offset: range.lowerBound, length: UInt64(range.count), allowHole: !noHole)
                } catch {
                    guard error.errno == .notSupported else { throw error }
                    throw NBDFailure(.notSupported, "no fast zeroing on \(data.path)")
                }
            } else {
                try data.zero(offset: range.lowerBound, length: UInt64(range.count), allowHole: !noHole)
            }
        }
        if fua { try data.sync() }
    }

    private func localWriteFinished(_ id: UInt64, error: NBDFailure?) {
        withState { (m: inout Mutable, effects: inout Effects) -> Void in
            guard var write = m.localWrites[id] else { return }
            write.localDone = true
            write.localError = error
            m.localWrites[id] = write
            for ready in m.tracker.markLocalDone(id) { startOperation(ready, &m, &effects) }
            completeIfDone(id, &m, &effects)
        }
    }

    /// The peer has the write (protocol B: received; protocol A: sent).
    func peerReceived(sequence: UInt64, connection: PeerConnection) {
        withState { (m: inout Mutable, effects: inout Effects) -> Void in
            guard let peer = m.peer, peer.connection === connection, let id = peer.writesBySequence[sequence],
                  var write = m.localWrites[id] else { return }
            write.peerReceived = true
            m.localWrites[id] = write
            completeIfDone(id, &m, &effects)
        }
    }

    /// Completes the client's request once the protocol's condition holds; forgets it once
    /// both disks are done.
    func completeIfDone(_ id: UInt64, _ m: inout Mutable, _ effects: inout Effects) {
        guard var write = m.localWrites[id], write.localDone else { return }
        let peerCondition: Bool
        switch config.net.protocol {
        case .C: peerCondition = write.peerDone
        case .B, .A: peerCondition = write.peerDone || write.peerReceived
        }
        if !write.completed && peerCondition {
            write.completed = true
            m.inFlight -= 1
            m.pendingWrites -= 1
            let promise = write.promise
            if let error = write.localError {
                effects.append { promise.fail(error) }
            } else {
                if write.kind == .data { m.writtenBytes += UInt64(write.range.count) }
                effects.append { promise.succeed(.done) }
            }
        }
        if write.completed && write.peerDone {
            m.localWrites[id] = nil
            m.al.end(ActivityLog.extents(of: write.range))
            if m.al.hasQueuedExtents { driveActivityLog(&m, &effects) }
            if let sequence = write.sequence { m.peer?.writesBySequence[sequence] = nil }
        } else {
            m.localWrites[id] = write
        }
    }

    // MARK: flush

    private func submitFlush(on eventLoop: any EventLoop) -> EventLoopFuture<NBDOutcome> {
        let peerAck: EventLoopFuture<Void>? = withState { (m: inout Mutable, effects: inout Effects) -> EventLoopFuture<Void>? in
            guard var peer = m.peer, m.replicating else { return nil }
            let sequence = peer.nextSequence
            peer.nextSequence += 1
            let promise = eventLoop.makePromise(of: Void.self)
            peer.flushes[sequence] = promise
            m.peer = peer
            let connection = peer.connection
            connection.channel.eventLoop.execute { connection.send(.flush(sequence: sequence)) }
            return promise.futureResult
        }
        let data = self.data
        let local = threadPool.runIfActive(eventLoop: eventLoop) { () throws -> NBDOutcome in
            do {
                try data.sync()
                return .done
            } catch {
                throw NBDFailure(.io, "\(error)")
            }
        }
        guard let peerAck else { return local }
        return local.and(peerAck).map { _ in .done }
    }
}
