import NIOCore
import RepdCore

/// Application reads: served from the local disk, or, on a SyncTarget, after the blocks it lacks
/// were pulled from the SyncSource. Reads are not ordered against writes (NBD does not ask for it).
extension Engine {
    mutating func clientRead(_ id: ClientRequestID, offset: UInt64, length: UInt32, kind: ClientReadKind) {
        if shuttingDown { return emit(.complete(id, .failed(.shutdown, "the resource is going down"))) }
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
        switch pending.removeValue(forKey: token) {
        case .clientRead(let id, let kind, let range)?:
            inFlight -= 1
            clientReadDone(id, kind: kind, range: range, result)
        case .tracked(let id)?:
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
