import PeerProtocol
import RepdEngine

/// The replication link between the two simulated nodes: at most one connection at a time, in
/// order within a connection (as TCP is), with latency, stalls, cuts and partitions.
struct SimulatedNetwork {
    struct Connection {
        let id: ConnectionID
        var alive = true
        /// Per direction (index = receiving node): messages sent, messages that will still arrive.
        var sent = [0, 0]
        var deliverUpTo = [Int.max, Int.max]
        var lastDelivery: [UInt64] = [0, 0]
    }

    var connections: [ConnectionID: Connection] = [:]
    var live: ConnectionID?
    private var nextID: ConnectionID = 1
    /// The connection each node's engine believes it has (until its peerLost is delivered).
    var believed: [ConnectionID?] = [nil, nil]
    var partitionedUntil: UInt64 = 0
    var stalledUntil: UInt64 = 0

    /// A new connection; both sides learn of it at `announcedAt`, and nothing on it (a message,
    /// its loss) reaches them before.
    mutating func open(announcedAt: UInt64) -> ConnectionID {
        let id = nextID
        nextID += 1
        var connection = Connection(id: id)
        connection.lastDelivery = [announcedAt, announcedAt]
        connections[id] = connection
        live = id
        return id
    }

    /// When a message sent now to `receiver` arrives (never before an earlier one).
    mutating func schedule(on id: ConnectionID, to receiver: SimNode, now: UInt64, latency: UInt64) -> (index: Int, at: UInt64)? {
        guard var connection = connections[id], connection.alive else { return nil }
        let r = receiver.rawValue
        let index = connection.sent[r]
        connection.sent[r] += 1
        let at = max(max(now, stalledUntil) + latency, connection.lastDelivery[r] + 1)
        connection.lastDelivery[r] = at
        connections[id] = connection
        return (index, at)
    }

    func delivers(_ id: ConnectionID, to receiver: SimNode, index: Int) -> Bool {
        guard let connection = connections[id] else { return false }
        return index < connection.deliverUpTo[receiver.rawValue]
    }

    /// Breaks a connection: of the messages still on their way, a prefix arrives, the rest is lost.
    /// Returns when each side may learn of the loss (after the last message that still arrives).
    mutating func cut(_ id: ConnectionID, now: UInt64, random: inout SplitMix64) -> [UInt64]? {
        guard var connection = connections[id], connection.alive else { return nil }
        connection.alive = false
        for r in 0..<2 {
            // Messages not yet delivered are those scheduled after now; keep a random prefix of them.
            let keep = Int(random.next() % 3) == 0 ? connection.sent[r] : Int(random.next() % UInt64(connection.sent[r] + 1))
            connection.deliverUpTo[r] = keep
        }
        connections[id] = connection
        if live == id { live = nil }
        return [max(now, connection.lastDelivery[0]), max(now, connection.lastDelivery[1])]
    }
}
