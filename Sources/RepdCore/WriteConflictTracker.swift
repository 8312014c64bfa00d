/// Keeps overlapping writes in one order on both nodes.
///
/// Every write, trim or zeroing that is in flight on this node is tracked with its byte range:
/// writes from local clients, writes received from the peer, and resync transfers. Two rules
/// make the replicas end identical:
///
/// 1. **Local order.** An operation may start on the local disk only when no earlier
///    overlapping operation is still being written locally. So overlapping operations reach the
///    disk in the order they were admitted, which is the order they cross the link.
/// 2. **Concurrent writes from both Primaries** (dual primary). On the node that resolves
///    conflicts (a per-connection choice both nodes agree on), a peer write that overlaps a
///    local write the peer has not yet acknowledged is skipped where they overlap: the local
///    version wins. The other node applies that peer write after its own overlapping write, so
///    the resolver's version wins there too. See Docs/DualPrimary.md for why this is enough.
///
/// Pure bookkeeping: the caller starts the I/O the tracker says may start.
public struct WriteConflictTracker: Sendable {
    public enum Origin: Sendable, Hashable {
        case local
        case peer
        case resync
    }

    public struct Operation: Sendable, Hashable {
        public let id: UInt64
        public let range: Range<UInt64>
        public let origin: Origin
        public var started: Bool
        public var localDone: Bool
        public var peerDone: Bool
    }

    private var operations: [Operation] = []
    private var nextID: UInt64 = 1

    public init() {}

    public var count: Int { operations.count }

    public func operation(_ id: UInt64) -> Operation? {
        operations.first { $0.id == id }
    }

    /// Adds an operation. It may start at once unless an earlier overlapping operation is
    /// still being written locally. `peerDone` is true when no acknowledgement from the peer
    /// will come (not replicated, or a peer write).
    public mutating func admit(_ range: Range<UInt64>, origin: Origin, peerDone: Bool) -> (id: UInt64, mayStart: Bool) {
        let id = nextID
        nextID += 1
        let blocked = operations.contains { !$0.localDone && $0.range.overlaps(range) }
        operations.append(Operation(id: id, range: range, origin: origin, started: !blocked, localDone: false, peerDone: peerDone))
        return (id, !blocked)
    }

    /// The parts of `range` covered by local writes that the peer has not acknowledged yet.
    /// The resolving node skips these parts of a peer write.
    public func unacknowledgedLocalOverlaps(_ range: Range<UInt64>) -> [Range<UInt64>] {
        var parts: [Range<UInt64>] = []
        for op in operations where op.origin == .local && !op.peerDone && op.range.overlaps(range) {
            parts.append(max(op.range.lowerBound, range.lowerBound)..<min(op.range.upperBound, range.upperBound))
        }
        return parts
    }

    /// Marks the local disk write done. Returns the operations that may start now.
    public mutating func markLocalDone(_ id: UInt64) -> [UInt64] {
        guard let index = operations.firstIndex(where: { $0.id == id }) else { return [] }
        operations[index].localDone = true
        removeFinished()
        return startable()
    }

    /// Marks the peer's acknowledgement (or its loss: the caller records the range out of sync).
    public mutating func markPeerDone(_ id: UInt64) {
        guard let index = operations.firstIndex(where: { $0.id == id }) else { return }
        operations[index].peerDone = true
        removeFinished()
    }

    /// Every operation still waiting for the peer (for a link that broke).
    public var awaitingPeer: [Operation] { operations.filter { !$0.peerDone } }

    private mutating func removeFinished() {
        operations.removeAll { $0.localDone && $0.peerDone }
    }

    /// Waiting operations with no earlier overlapping operation still writing locally; marks them started.
    private mutating func startable() -> [UInt64] {
        var ready: [UInt64] = []
        for i in operations.indices where !operations[i].started {
            let range = operations[i].range
            let blocked = operations[..<i].contains { !$0.localDone && $0.range.overlaps(range) }
            if !blocked {
                operations[i].started = true
                ready.append(operations[i].id)
            }
        }
        return ready
    }
}

extension Range where Bound == UInt64 {
    /// This range without the given parts, as ascending disjoint ranges.
    public func subtracting(_ parts: [Range<UInt64>]) -> [Range<UInt64>] {
        var result = [self]
        for part in parts {
            result = result.flatMap { r -> [Range<UInt64>] in
                guard r.overlaps(part) else { return [r] }
                var pieces: [Range<UInt64>] = []
                if r.lowerBound < part.lowerBound { pieces.append(r.lowerBound..<part.lowerBound) }
                if part.upperBound < r.upperBound { pieces.append(part.upperBound..<r.upperBound) }
                return pieces
            }
        }
        return result
    }
}
