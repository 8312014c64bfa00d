/// Figures the status display derives from the engine's state.
extension Engine {
    /// Replicated writes the peer has not acknowledged yet.
    public var unacknowledgedWrites: Int {
        operations.values.reduce(0) { count, op in
            if case .localWrite(let write) = op, write.replicated, !write.peerDone { return count + 1 }
            return count
        }
    }

    /// Writes from the peer being written here.
    public var peerWritesInFlight: Int {
        operations.values.reduce(0) { count, op in
            if case .peerApply = op { return count + 1 }
            return count
        }
    }

    /// Writes or resync data the peer acknowledged and has not yet confirmed durable.
    public var awaitsPeerDurability: Bool { session?.hasUnconfirmed ?? false }

    /// Operations of any kind the engine is waiting on (for the simulator's liveness checks).
    public var outstandingIO: Int { pending.count }

    /// What the engine waits for, in one line (for the simulator's reports).
    public var waitingSummary: String {
        var kinds: [String: Int] = [:]
        for value in pending.values {
            let name: String
            switch value {
            case .clientRead: name = "client reads"
            case .tracked(let id):
                switch operations[id] {
                case .localWrite?: name = "local writes"
                case .peerApply?: name = "peer writes"
                case .resyncRead?: name = "resync reads"
                case .verifyRead?: name = "verify reads"
                case .digestJob?: name = "digests"
                case .pullServe?: name = "pull reads"
                case nil: name = "tracked (gone)"
                }
            case .clientFlushSync: name = "flush syncs"
            case .peerFlushSync: name = "peer flush syncs"
            case .demotionSync: name = "demotion sync"
            case .peerLossSync: name = "sync after the peer was lost"
            case .metadata(let then, _): name = "metadata (\(then))"
            case .handler(let handler, _): name = "handler \(handler)"
            }
            kinds[name, default: 0] += 1
        }
        var parts = kinds.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        parts.append("\(operations.count) tracked operations, \(tracker.count) in the tracker")
        parts.append("\(metadata.activityLogWaiting.count) writes wait for the activity log\(metadata.activityLogInFlight ? " (a transaction is being written)" : "")")
        parts.append("\(writes.gated.count) writes wait for a new generation")
        parts.append("\(pulls.count) pulls, \(writes.flushes.count) flushes")
        if let session { parts.append("session \(session.connection): \(session.barriers.count) barriers, \(session.peerFlushWaits.count) peer flushes waiting, deferred \(session.deferredMessages?.count ?? -1)") }
        if let roleChange { parts.append("role change \(roleChange.kind) \(roleChange.phase)") }
        return parts.joined(separator: ", ")
    }
}
