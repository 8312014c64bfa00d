import RepdCore
import RepdEngine

/// Every block every application write carried, and what became of it: the reference the
/// simulator checks disks and reads against.
struct Ledger {
    struct BlockWrite {
        let tag: UInt64
        let block: Int
        let node: SimNode
        let issuedAt: UInt64
        var completedAt: UInt64?
        var acknowledged = false
        let fua: Bool
        /// A flush the same node completed later covers it (or FUA): no crash may lose it.
        var durable = false
        /// Acknowledged under protocol C while replicating: the peer has it too.
        var replicatedAck = false
        /// A split-brain resolution threw away the data of the node that acknowledged it.
        var voided = false
        /// One node's disk failed to write it (on-io-error pass_on): after a failover to that node it
        /// is gone, as DRBD documents for pass_on.
        var fragile = false
    }

    private(set) var writes: [UInt64: BlockWrite] = [:]
    private var byBlock: [Int: [UInt64]] = [:]
    /// Acknowledged, not yet durable, by node.
    private var notDurable: [SimNode: [UInt64]] = [:]
    /// When each node lost power.
    private(set) var crashes: [UInt64] = []
    private var nextTag: UInt64 = 1

    mutating func newTags(_ count: Int) -> [UInt64] {
        defer { nextTag += UInt64(count) }
        return (0..<count).map { nextTag + UInt64($0) }
    }

    mutating func issued(tag: UInt64, block: Int, node: SimNode, at time: UInt64, fua: Bool) {
        writes[tag] = BlockWrite(tag: tag, block: block, node: node, issuedAt: time, fua: fua, durable: false)
        byBlock[block, default: []].append(tag)
    }

    /// `fuaIsDurable`: protocol C, where FUA means durable on both disks (with A and B the peer may
    /// not have it yet, and a failover loses it, as DRBD documents).
    mutating func completed(tag: UInt64, at time: UInt64, ok: Bool, replicatedAck: Bool, fuaIsDurable: Bool) {
        guard var write = writes[tag] else { return }
        write.completedAt = time
        write.acknowledged = ok
        write.durable = ok && write.fua && fuaIsDurable
        write.replicatedAck = ok && replicatedAck
        writes[tag] = write
        if ok, !write.durable { notDurable[write.node, default: []].append(tag) }
    }

    /// A flush issued at `issuedAt` on `node` completed: writes it acknowledged before are durable.
    mutating func flushed(node: SimNode, issuedAt: UInt64) {
        notDurable[node] = (notDurable[node] ?? []).filter { tag in
            guard let completed = writes[tag]?.completedAt, completed <= issuedAt else { return true }
            writes[tag]!.durable = true
            return false
        }
    }

    /// A node lost power: a flush after that does not make durable what the crash may have taken
    /// (on either node: a SyncTarget gets back what its source kept).
    mutating func crashed(_ node: SimNode, at time: UInt64) {
        crashes.append(time)
        notDurable.removeAll()
    }

    /// The node's data since `since` was discarded by a split-brain resolution.
    mutating func discarded(node: SimNode, since: UInt64) {
        for (tag, write) in writes where write.node == node && (write.completedAt ?? write.issuedAt) >= since {
            writes[tag]!.voided = true
        }
    }

    func record(_ tag: UInt64) -> BlockWrite? { writes[tag] }

    mutating func fragile(tags: [UInt64]) {
        for tag in tags { writes[tag]?.fragile = true }
    }

    mutating func void(tags: [UInt64]) {
        for tag in tags { writes[tag]?.voided = true }
    }

    /// May this acknowledged write be missing? Not durable and some node lost power since it was
    /// issued, or its node's data was discarded after a split brain.
    func mayBeLost(_ write: BlockWrite) -> Bool {
        if write.voided { return true }
        if !write.durable || write.fragile, crashes.contains(where: { $0 >= write.issuedAt }) { return true }
        return false
    }

    /// Whether `value` (a tag, 0 for never written) is strictly older than `write`: it was
    /// produced by a write that had completed before `write` was issued, or it is the initial zero.
    func isOlder(_ value: UInt64, than write: BlockWrite) -> Bool {
        if value == write.tag { return false }
        guard value != 0 else { return true }
        guard let other = writes[value], let completed = other.completedAt else { return false }
        return completed < write.issuedAt
    }

    /// The acknowledged writes of `block` that must be visible now, newest last.
    func mustSurvive(block: Int) -> [BlockWrite] {
        (byBlock[block] ?? []).compactMap { writes[$0] }.filter { $0.acknowledged && !mayBeLost($0) }
    }

    /// Problems with the value a disk or a read shows for a block, given the writes that must survive.
    func check(value: UInt64, block: Int, against survivors: [BlockWrite]) -> String? {
        if value != 0, let origin = writes[value], origin.block != block {
            return "block \(block) holds the data of block \(origin.block) (tag \(value))"
        }
        if value != 0, writes[value] == nil {
            return "block \(block) holds tag \(value), which no write produced"
        }
        for survivor in survivors where isOlder(value, than: survivor) {
            return "block \(block) holds \(describe(value)), older than the acknowledged \(describe(survivor.tag))"
        }
        return nil
    }

    func describe(_ tag: UInt64) -> String {
        guard tag != 0, let write = writes[tag] else { return "zeroes (never written)" }
        var text = "tag \(tag) written on \(write.node) at \(milliseconds(write.issuedAt)) ms"
        if let completed = write.completedAt { text += ", \(write.acknowledged ? "acknowledged" : "failed") at \(milliseconds(completed)) ms" }
        if write.durable { text += ", durable" }
        return text
    }
}

func milliseconds(_ nanoseconds: UInt64) -> UInt64 { nanoseconds / 1_000_000 }
