import NBDProtocol
import NIOCore
import RepdCore
import RepdNet
import RepdSystem

/// The data path: each NBD request becomes positional I/O on the backing disk, run on the
/// thread pool so that requests proceed concurrently.
extension Resource: NBDBackend {
    public func exports() -> [NBDExportInfo] {
        let flags: NBD.TransmissionFlags = [
            .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendFastZero, .sendCache, .canMultiConn, .sendDF,
        ]
        return [NBDExportInfo(name: config.name, description: "repd resource \(config.name) on \(node)", size: size, flags: flags)]
    }

    public func report(_ message: String, connection: String) {
        logger.warning("NBD \(connection): \(message)")
    }

    public func execute(_ request: NBDRequest, payload: ByteBuffer?, session: NBDSession, on eventLoop: any EventLoop) -> EventLoopFuture<NBDOutcome> {
        guard let command = request.command else {
            return eventLoop.makeFailedFuture(NBDFailure(.invalid, "unknown command"))
        }
        let isWrite = command == .write || command == .trim || command == .writeZeroes
        // Admission: one locked step decides whether the request may run and counts it.
        let refusal: NBDFailure? = mutable.withLockedValue { m in
            if m.shuttingDown { return NBDFailure(.shutdown, "the resource is going down") }
            if isWrite && !m.state.acceptsWrites {
                return NBDFailure(.permission, "\(config.name) is \(m.state.role.rawValue) with disk \(m.state.disk.rawValue) on \(node): writes need a Primary with an UpToDate disk")
            }
            if (command == .read || command == .blockStatus) && !m.state.servesReads {
                return NBDFailure(.io, "\(config.name) has no readable data on \(node) (disk \(m.state.disk.rawValue))")
            }
            m.inFlight += 1
            if isWrite {
                m.pendingWrites += 1
                if m.state.connection != .connected {
                    // The peer misses this write: remember the blocks for the resync.
                    let pages = m.bitmap.markOutOfSync(byteRange: request.offset..<(request.offset + UInt64(request.length)))
                    m.dirtyPages.formUnion(pages)
                }
            }
            return nil
        }
        if let refusal { return eventLoop.makeFailedFuture(refusal) }

        let data = self.data
        let fua = request.flags.contains(.fua)
        let future: EventLoopFuture<NBDOutcome> = threadPool.runIfActive(eventLoop: eventLoop) { () throws -> NBDOutcome in
            do {
                switch command {
                case .read:
                    var buffer = ByteBufferAllocator().buffer(capacity: Int(request.length))
                    try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(request.length)) { (p) throws(SystemError) -> Int in
                        try data.read(into: UnsafeMutableRawBufferPointer(rebasing: p[0..<Int(request.length)]), at: request.offset)
                        return Int(request.length)
                    }
                    return .data(buffer)
                case .write:
                    try payload!.withUnsafeReadableBytes { (p) throws(SystemError) in try data.write(p, at: request.offset) }
                    if fua { try data.sync() }
                    return .done
                case .flush:
                    try data.sync()
                    return .done
                case .trim:
                    try data.discard(offset: request.offset, length: UInt64(request.length))
                    if fua { try data.sync() }
                    return .done
                case .writeZeroes:
                    let allowHole = !request.flags.contains(.noHole)
                    if request.flags.contains(.fastZero) {
                        do throws(SystemError) {
                            try data.zeroFast(offset: request.offset, length: UInt64(request.length), allowHole: allowHole)
                        } catch {
                            guard error.errno == .notSupported else { throw error }
                            throw NBDFailure(.notSupported, "no fast zeroing on \(data.path)")
                        }
                    } else {
                        try data.zero(offset: request.offset, length: UInt64(request.length), allowHole: allowHole)
                    }
                    if fua { try data.sync() }
                    return .done
                case .cache:
                    data.prefetch(offset: request.offset, length: UInt64(request.length))
                    return .done
                case .blockStatus:
                    var runs = data.allocationMap(offset: request.offset, length: UInt64(request.length), end: self.size)
                    if request.flags.contains(.requestOne) { runs = Array(runs.prefix(1)) }
                    return .extents(runs.map { run in
                        (length: UInt32(run.length), flags: run.hole ? (NBD.stateHole | NBD.stateZero) : 0)
                    })
                case .disconnect, .resize:
                    throw NBDFailure(.invalid, "unexpected \(command)")
                }
            } catch let error as SystemError {
                self.logger.error("\(command) at \(request.offset)+\(request.length): \(error)")
                let code: NBDError = error.errno == .noSpace ? .noSpace : .io
                throw NBDFailure(code, "\(error)")
            }
        }
        future.whenComplete { result in
            self.mutable.withLockedValue { m in
                m.inFlight -= 1
                if isWrite { m.pendingWrites -= 1 }
                if case .success = result {
                    if command == .read { m.readBytes += UInt64(request.length) }
                    if command == .write { m.writtenBytes += UInt64(request.length) }
                }
            }
        }
        return future
    }
}
