import RepdCore

/// `repd adjust`: settings from a changed resource file, taken while the resource runs.
///
/// Only settings the engine reads afresh each time it decides are taken: the replication
/// protocol (each write completes under the protocol in effect when its acknowledgements are
/// counted, and the peer always sends the acknowledgement a stricter protocol waits for, so writes
/// in flight under the old protocol complete correctly), timeouts, policies, algorithms, the
/// resync controller (a running resync goes on with the new rates), disk-error and fencing
/// policies, and the handlers. Sizes, the activity log and the node's identity stay as they were
/// at `up`.
extension Engine {
    mutating func adjust(_ id: CommandID, _ new: EngineConfiguration) {
        let old = configuration
        if old.allowTwoPrimaries && !new.allowTwoPrimaries && state.role == .primary && state.peerRole == .primary {
            return reply(id, false, "allow-two-primaries cannot be turned off while both nodes are Primary: "
                + "make one of them Secondary first (`repd secondary \(old.resource)` there)")
        }
        if fence != nil && new.fencing != old.fencing {
            return reply(id, false, "fencing cannot change while the fence-peer handler runs; try again when it has finished")
        }
        var next = old
        next.replication = new.replication
        next.allowTwoPrimaries = new.allowTwoPrimaries
        next.ackTimeoutNanoseconds = new.ackTimeoutNanoseconds
        next.koCount = new.koCount
        next.splitBrainPolicies = new.splitBrainPolicies
        next.rrConflict = new.rrConflict
        next.csumsAlgorithm = new.csumsAlgorithm
        next.verifyAlgorithm = new.verifyAlgorithm
        next.resync = new.resync
        next.onIOError = new.onIOError
        next.diskTimeoutNanoseconds = new.diskTimeoutNanoseconds
        next.suspendWithoutData = new.suspendWithoutData
        next.fencing = new.fencing
        next.handlers = new.handlers
        next.handlerEnvironment = new.handlerEnvironment
        configuration = next

        var changed: [String] = []
        if old.replication != next.replication { changed.append("protocol \(old.replication.rawValue) -> \(next.replication.rawValue)") }
        if old.allowTwoPrimaries != next.allowTwoPrimaries {
            changed.append("allow-two-primaries \(next.allowTwoPrimaries ? "yes" : "no")")
            state.allowTwoPrimaries = next.allowTwoPrimaries
        }
        if old.resync != next.resync {
            changed.append("resync controller \(Self.describe(old.resync)) -> \(Self.describe(next.resync))")
            // A running resync goes on under the new settings (its controller keeps its history).
            if session?.resync?.controller != nil { session!.resync!.controller!.settings = next.resync }
        }
        if old.fencing != next.fencing { changed.append("fencing \(next.fencing.rawValue)") }
        if old.onIOError != next.onIOError { changed.append("on-io-error \(next.onIOError.rawValue)") }
        if old.ackTimeoutNanoseconds != next.ackTimeoutNanoseconds { changed.append("timeout \(next.ackTimeoutNanoseconds / 100_000_000)") }
        if old.handlers != next.handlers { changed.append("handlers \(next.handlers.sorted().joined(separator: ","))") }
        // The peer learns the new allow-two-primaries (it is part of the state report).
        if old.allowTwoPrimaries != next.allowTwoPrimaries { sendState() }
        let summary = changed.isEmpty ? "settings taken" : changed.joined(separator: "; ")
        log(.info, "adjust: \(summary)")
        reply(id, true, summary)
    }

    static func describe(_ s: ResyncController.Settings) -> String {
        s.planAhead > 0
            ? "dynamic (c-plan-ahead \(s.planAhead), c-max-rate \(s.maxRate / 1024)K, c-min-rate \(s.minRate / 1024)K, c-fill-target \(s.fillTarget / 1024)K)"
            : "fixed \(s.fixedRate / 1024)K/s"
    }
}
