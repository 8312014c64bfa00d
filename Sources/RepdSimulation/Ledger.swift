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
        /// A trim or zeroing: the block reads as zeroes afterwards (its tag is the ledger's own).
        var zero = false
    }

    /// Every block write, by tag (tags are handed out in order from 1): arrays, not dictionaries,
    /// since `swift test` runs thousands of schedules in debug builds.
    private var storage: [BlockWrite] = []
    private var byBlock: [[UInt64]]
    /// Acknowledged, not yet durable, by node.
    private var notDurable: [[UInt64]] = [[], []]
    /// When each node lost power.
    private(set) var crashes: [UInt64] = []
    private(set) var acknowledgedCount = 0

    init(blockCount: Int) {
        byBlock = Array(repeating: [], count: blockCount)
    }

    /// The write that produced `tag`.
    func record(_ tag: UInt64) -> BlockWrite? {
        guard tag >= 1, tag <= UInt64(storage.count) else { return nil }
        return storage[Int(tag - 1)]
    }

    private subscript(tag: UInt64) -> BlockWrite {
        get { storage[Int(tag - 1)] }
        set { storage[Int(tag - 1)] = newValue }
    }

    mutating func newTags(_ count: Int) -> [UInt64] {
        let first = UInt64(storage.count) + 1 + UInt64(reserved)
        reserved += count
        return (0..<count).map { first + UInt64($0) }
    }
    private var reserved = 0

    mutating func issued(tag: UInt64, block: Int, node: SimNode, at time: UInt64, fua: Bool, zero: Bool = false) {
        precondition(tag == UInt64(storage.count) + 1, "tags are recorded in order")
        reserved -= 1
        storage.append(BlockWrite(tag: tag, block: block, node: node, issuedAt: time, fua: fua, durable: false, zero: zero))
        byBlock[block].append(tag)
    }

    /// `fuaIsDurable`: protocol C, where FUA means durable on both disks (with A and B the peer may
    /// not have it yet, and a failover loses it, as DRBD documents).
    mutating func completed(tag: UInt64, at time: UInt64, ok: Bool, replicatedAck: Bool, fuaIsDurable: Bool) {
        guard record(tag) != nil else { return }
        var write = self[tag]
        write.completedAt = time
        write.acknowledged = ok
        write.durable = ok && write.fua && fuaIsDurable
        write.replicatedAck = ok && replicatedAck
        self[tag] = write
        if ok { acknowledgedCount += 1 }
        if ok, !write.durable { notDurable[write.node.rawValue].append(tag) }
    }

    /// A flush issued at `issuedAt` on `node` completed: writes it acknowledged before are durable.
    mutating func flushed(node: SimNode, issuedAt: UInt64) {
        var kept: [UInt64] = []
        for tag in notDurable[node.rawValue] {
            if let completed = self[tag].completedAt, completed <= issuedAt {
                self[tag].durable = true
            } else {
                kept.append(tag)
            }
        }
        notDurable[node.rawValue] = kept
    }

    /// A node lost power: a flush after that does not make durable what the crash may have taken
    /// (on either node: a SyncTarget gets back what its source kept).
    mutating func crashed(_ node: SimNode, at time: UInt64) {
        crashes.append(time)
        notDurable = [[], []]
    }

    /// The node's data since `since` was discarded by a split-brain resolution.
    mutating func discarded(node: SimNode, since: UInt64) {
        for index in storage.indices where storage[index].node == node && (storage[index].completedAt ?? storage[index].issuedAt) >= since {
            storage[index].voided = true
        }
    }

    mutating func fragile(tags: [UInt64]) {
        for tag in tags where record(tag) != nil { self[tag].fragile = true }
    }

    mutating func void(tags: [UInt64]) {
        for tag in tags where record(tag) != nil { self[tag].voided = true }
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
        if value == write.tag || (value == 0 && write.zero) { return false }
        guard value != 0 else {
            // Zeroes: the initial content, or a trim or zeroing that is not older than `write`.
            return !byBlock[write.block].contains { tag in
                let zero = self[tag]
                guard zero.zero else { return false }
                return zero.completedAt.map { $0 >= write.issuedAt } ?? true
            }
        }
        guard let other = record(value), let completed = other.completedAt else { return false }
        return completed < write.issuedAt
    }

    /// The acknowledged writes of `block` that must be visible now, newest last.
    func mustSurvive(block: Int) -> [BlockWrite] {
        byBlock[block].map { self[$0] }.filter { $0.acknowledged && !mayBeLost($0) }
    }

    /// Problems with the value a disk or a read shows for a block, given the writes that must survive.
    func check(value: UInt64, block: Int, against survivors: [BlockWrite]) -> String? {
        if value != 0, let origin = record(value), origin.block != block {
            return "block \(block) holds the data of block \(origin.block) (tag \(value))"
        }
        if value != 0, record(value) == nil || record(value)!.zero {
            return "block \(block) holds tag \(value), which no write produced"
        }
        for survivor in survivors where isOlder(value, than: survivor) {
            return "block \(block) holds \(describe(value)), older than the acknowledged \(describe(survivor.tag))"
        }
        return nil
    }

    func describe(_ tag: UInt64) -> String {
        guard tag != 0, let write = record(tag) else { return "zeroes (never written)" }
        var text = "tag \(tag) written on \(write.node) at \(milliseconds(write.issuedAt)) ms"
        if let completed = write.completedAt { text += ", \(write.acknowledged ? "acknowledged" : "failed") at \(milliseconds(completed)) ms" }
        if write.durable { text += ", durable" }
        return text
    }
}

func milliseconds(_ nanoseconds: UInt64) -> UInt64 { nanoseconds / 1_000_000 }
