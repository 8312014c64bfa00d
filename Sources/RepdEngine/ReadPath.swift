import NIOCore
import RepdCore

/// Application reads: served from the local disk, or, on a SyncTarget, after the blocks it lacks
/// were pulled from the SyncSource. Reads are not ordered against writes (NBD does not ask for it).
extension Engine {
    mutating func clientRead(_ id: ClientRequestID, offset: UInt64, length: UInt32, kind: ClientReadKind) {
        if shuttingDown { return emit(.complete(id, .failed(.shutdown, "the resource is going down"))) }
        if ioSuspended && kind != .cache { return suspended.append(.read(id, offset: offset, length: length, kind: kind)) }
        if kind != .cache && !state.servesReads && suspendsWithoutData && !state.hasDisk {
            // No data anywhere (on-no-data-accessible suspend-io): the read waits for it.
            return suspended.append(.read(id, offset: offset, length: length, kind: kind))
        }
        if kind != .cache && !state.servesReads {
            return emit(.complete(id, .failed(.io, "\(configuration.resource) has no readable data on \(configuration.node) (disk \(state.disk.rawValue))")))
        }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        guard !overflow, end <= exportSize else {
            return emit(.complete(id, .failed(.invalid, "read at \(offset)+\(length) is beyond the size \(exportSize)")))
        }
        let range = offset..<end
        if kind == .read, writes.isStale(range) {
            return emit(.complete(id, .failed(.io, "\(configuration.resource) on \(configuration.node): the last write of part of \(offset)+\(length) failed on the local disk (on-io-error pass_on); the resync repairs it")))
        }
        inFlight += 1
        counters.applicationRequests &+= 1
        if !state.hasDisk {
            guard state.servedByPeer else {
                inFlight -= 1
                if kind == .cache { return emit(.complete(id, .done)) }
                return emit(.complete(id, .failed(.io, "\(configuration.resource) has no disk on \(configuration.node), and \(peerName) is not a connected UpToDate disk")))
            }
            return readThroughPeer(id, kind: kind, range: range)
        }
        if kind == .read, needsPull(range) {
            // Not resynced yet: the blocks come from the peer first.
            return pull(range, waiter: .read(id, kind, range))
        }
        if case .blockStatus = kind, state.disk == .inconsistent {
            // The local file's holes say nothing about data not resynced yet: report it all as data.
            inFlight -= 1
            return emit(.complete(id, .extents([AllocationRun(length: UInt64(length), hole: false)])))
        }
        readFromDisk(id, kind: kind, range: range)
    }

    /// Serves a read from the local disk (the caller counted it in flight).
    mutating func readFromDisk(_ id: ClientRequestID, kind: ClientReadKind, range: Range<UInt64>) {
        guard state.hasDisk else {
            inFlight -= 1
            return clientRead(id, offset: range.lowerBound, length: UInt32(range.count), kind: kind)
        }
        let token = newToken()
        pending[token] = .clientRead(id, kind, range)
        let local: LocalReadKind
        switch kind {
        case .read: local = .data
        case .cache: local = .prefetch
        case .blockStatus: local = .allocation
        }
        emit(.readLocal(token, range: range, kind: local))
    }

    mutating func readDone(_ token: IOToken, _ result: Result<ReadOutcome, IOFailure>) {
        guard let io = pending.removeValue(forKey: token) else { return }
        if !issuedAt.isEmpty { issuedAt[token] = nil }
        readFinished(io, result)
    }

    mutating func readFinished(_ io: PendingIO, _ result: Result<ReadOutcome, IOFailure>) {
        if case .failure(let failure) = result, diskAttached, failureDetaches(failure) {
            // The disk goes (on-io-error detach); a client's read is served again, through the peer.
            let (operation, offset) = readDescription(io)
            if case .clientRead(_, _, let range) = io { metadata.markOutOfSync(range) }
            localIOFailed(failure, operation: operation, offset: offset)
            if case .clientRead(let id, let kind, let range) = io {
                inFlight -= 1
                return clientRead(id, offset: range.lowerBound, length: UInt32(range.count), kind: kind)
            }
        }
        switch io {
        case .clientRead(let id, let kind, let range):
            inFlight -= 1
            clientReadDone(id, kind: kind, range: range, result)
        case .tracked(let id):
            switch operations[id] {
            case .resyncRead(let range)?: resyncReadDone(id, range: range, result)
            case .verifyRead(let range)?: verifyReadDone(id, range: range, result)
            case .digestJob(let range, _)?: digestJobDone(id, range: range, result)
            case .pullServe(let requestID, let range)?: pullServeDone(id, requestID: requestID, range: range, result)
            default: break
            }
        default:
            break
        }
    }

    func readDescription(_ io: PendingIO) -> (String, UInt64?) {
        switch io {
        case .clientRead(_, _, let range): return ("read", range.lowerBound)
        case .tracked(let id):
            switch operations[id] {
            case .resyncRead(let range)?: return ("resync read", range.lowerBound)
            case .verifyRead(let range)?: return ("verify read", range.lowerBound)
            case .digestJob(let range, _)?: return ("digest read", range.lowerBound)
            case .pullServe(_, let range)?: return ("read for the peer", range.lowerBound)
            default: return ("read", nil)
            }
        default: return ("read", nil)
        }
    }

    mutating func clientReadDone(_ id: ClientRequestID, kind: ClientReadKind, range: Range<UInt64>, _ result: Result<ReadOutcome, IOFailure>) {
        switch result {
        case .failure(let failure):
            log(.error, "read at \(range.lowerBound)+\(range.count): \(failure)")
            emit(.complete(id, .failed(clientError(failure), failure.message)))
        case .success(let outcome):
            switch kind {
            case .read:
                counters.readBytes += UInt64(range.count)
                emit(.complete(id, .data(outcome.data ?? ByteBuffer())))
            case .cache:
                emit(.complete(id, .done))
            case .blockStatus(let requestOne):
                var runs = outcome.allocation ?? [AllocationRun(length: UInt64(range.count), hole: false)]
                if requestOne { runs = Array(runs.prefix(1)) }
                emit(.complete(id, .extents(runs)))
            }
        }
        roleChangeProgress()
    }
}
