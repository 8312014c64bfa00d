/// The activity log's rules, without I/O: which 4 MiB extents are "hot" (may have writes in
/// flight), which write must wait until its extents are recorded on disk, which extent to evict,
/// and what the next on-disk transaction holds. The daemon writes the transactions this returns
/// (`ActivityLogTransaction`, Docs/OnDiskFormat.md section 3) and reports back when they are durable.
///
/// The protocol for a write:
/// 1. `begin(extents)`: `true` means every extent is hot and the write may go to disk now (it holds
///    a reference on each extent). `false` means it must wait; its cold extents are queued.
/// 2. While `hasQueuedExtents`, the daemon calls `prepareTransaction()`, writes the block (after
///    making the bitmap durable if the transaction evicts extents), then calls `committed()`, and
///    retries the waiting writes.
/// 3. `end(extents)` when the write is complete on both disks.
public struct ActivityLog: Sendable {
    /// Number of slots in the table (`al-extents`).
    public let slotCount: Int
    /// Extent number held by each slot, or `ActivityLogTransaction.emptyExtent`.
    public private(set) var slots: [UInt32]
    private var slotOfExtent: [UInt32: Int] = [:]
    private var references: [Int]
    private var lastUse: [UInt64]
    private var clock: UInt64 = 0
    /// Extents wanted by waiting writes, in the order they were first wanted.
    private var queued: [UInt32] = []
    private var queuedSet: Set<UInt32> = []
    /// Extents in the transaction being written: they have a slot but are not hot yet.
    private var committing: Set<UInt32> = []
    /// The number the next transaction gets.
    public private(set) var nextTransactionNumber: UInt64
    private var contextCursor = 0
    /// Transactions prepared so far (the `al-writes` counter).
    public private(set) var transactionCount: UInt64 = 0

    /// A table of `slotCount` slots holding `extents` (e.g. replayed after a crash), continuing the
    /// ring at `nextTransactionNumber`. Extents beyond the table size are dropped.
    public init(slotCount: Int, extents: [UInt32] = [], nextTransactionNumber: UInt64 = 1) {
        precondition(slotCount > 0, "al-extents must be positive")
        self.slotCount = slotCount
        self.slots = Array(repeating: ActivityLogTransaction.emptyExtent, count: slotCount)
        self.references = Array(repeating: 0, count: slotCount)
        self.lastUse = Array(repeating: 0, count: slotCount)
        self.nextTransactionNumber = nextTransactionNumber
        for (slot, extent) in extents.prefix(slotCount).enumerated() where extent != ActivityLogTransaction.emptyExtent {
            if slotOfExtent[extent] == nil {
                slots[slot] = extent
                slotOfExtent[extent] = slot
            }
        }
    }

    /// The extents a byte range touches.
    public static func extents(of range: Range<UInt64>) -> ClosedRange<UInt32> {
        let size = Geometry.activityLogExtentSize
        let first = UInt32(range.lowerBound / size)
        let last = range.isEmpty ? first : UInt32((range.upperBound - 1) / size)
        return first...last
    }

    /// The byte range of an extent.
    public static func byteRange(ofExtent extent: UInt32) -> Range<UInt64> {
        let start = UInt64(extent) * Geometry.activityLogExtentSize
        return start..<(start + Geometry.activityLogExtentSize)
    }

    public func isHot(_ extent: UInt32) -> Bool {
        slotOfExtent[extent] != nil && !committing.contains(extent)
    }

    /// Extents recorded as hot (for recovery and status), in slot order.
    public var hotExtents: [UInt32] {
        slots.filter { $0 != ActivityLogTransaction.emptyExtent && !committing.contains($0) }
    }

    /// Writes wait for extents that are not recorded yet.
    public var hasQueuedExtents: Bool { !queued.isEmpty }

    /// Whether a transaction is being written.
    public var isCommitting: Bool { !committing.isEmpty }

    /// Takes a reference on each extent if all are hot; otherwise queues the cold ones and takes nothing.
    public mutating func begin(_ extents: ClosedRange<UInt32>) -> Bool {
        var allHot = true
        for extent in extents where !isHot(extent) {
            allHot = false
            if slotOfExtent[extent] == nil, queuedSet.insert(extent).inserted { queued.append(extent) }
        }
        guard allHot else { return false }
        clock += 1
        for extent in extents {
            let slot = slotOfExtent[extent]!
            references[slot] += 1
            lastUse[slot] = clock
        }
        return true
    }

    /// Drops the references `begin` took.
    public mutating func end(_ extents: ClosedRange<UInt32>) {
        for extent in extents {
            guard let slot = slotOfExtent[extent], references[slot] > 0 else { continue }
            references[slot] -= 1
        }
    }

    /// A transaction to write, and the extents it evicts (their bitmap bits must be durable first).
    public struct Prepared: Sendable, Equatable {
        public var transaction: ActivityLogTransaction
        public var evicted: [UInt32]
        /// Ring block index (0 ..< 64) the transaction goes to.
        public var ringSlot: Int
    }

    /// Assigns slots to queued extents (at most 64 per transaction), evicting the least recently used
    /// idle extents when the table is full, but none of `keeping` (extents waiting writes already
    /// have: evicting one of them would make that write wait again). Returns nil when nothing is
    /// queued, a transaction is already being written, or every slot is busy (the writes wait for
    /// others to end).
    public mutating func prepareTransaction(keeping: Set<UInt32> = []) -> Prepared? {
        guard committing.isEmpty, !queued.isEmpty else { return nil }
        var updates: [ActivityLogTransaction.Update] = []
        var evicted: [UInt32] = []
        var taken: [UInt32] = []
        for extent in queued {
            guard updates.count < ActivityLogTransaction.maximumUpdates else { break }
            guard let slot = freeSlot(keeping: keeping) else { break }
            let old = slots[slot]
            if old != ActivityLogTransaction.emptyExtent {
                slotOfExtent[old] = nil
                evicted.append(old)
            }
            slots[slot] = extent
            slotOfExtent[extent] = slot
            references[slot] = 0
            clock += 1
            lastUse[slot] = clock
            committing.insert(extent)
            taken.append(extent)
            updates.append(.init(slot: UInt32(slot), extent: extent))
        }
        guard !updates.isEmpty else { return nil }
        let takenSet = Set(taken)
        queued.removeAll { takenSet.contains($0) }
        queuedSet.subtract(takenSet)
        return Prepared(transaction: makeTransaction(updates: updates), evicted: evicted,
                        ringSlot: ActivityLogTransaction.ringSlot(forTransaction: nextTransactionNumber - 1))
    }

    /// A count that grows with every use of an extent: `prepareRetirement` takes a value read
    /// earlier and retires the extents nobody used since.
    public var useClock: UInt64 { clock }

    /// A transaction that empties the slots of idle extents: no reference (every write there is
    /// complete and confirmed), not being committed, not wanted by a waiting write, and last used
    /// at or before `usedAtOrBefore` (a `useClock` value). At most `maximumUpdates` per
    /// transaction, the least recently used first. Like an eviction, the extents lose their
    /// protection once it is durable, so the writes completed there and the bitmap pages must be
    /// durable before it. Returns nil when there is nothing to retire or a transaction is being
    /// written. After a crash only the extents still in the table are resynced: a table that holds
    /// just the recently used extents keeps that resync small, whatever `al-extents` says.
    public mutating func prepareRetirement(usedAtOrBefore mark: UInt64) -> Prepared? {
        guard committing.isEmpty else { return nil }
        let idle = (0..<slotCount).filter { slot in
            slots[slot] != ActivityLogTransaction.emptyExtent && references[slot] == 0 && lastUse[slot] <= mark
                && !queuedSet.contains(slots[slot])
        }
        guard !idle.isEmpty else { return nil }
        let chosen = idle.sorted { lastUse[$0] < lastUse[$1] }.prefix(ActivityLogTransaction.maximumUpdates)
        var updates: [ActivityLogTransaction.Update] = []
        var evicted: [UInt32] = []
        for slot in chosen {
            evicted.append(slots[slot])
            slotOfExtent[slots[slot]] = nil
            slots[slot] = ActivityLogTransaction.emptyExtent
            updates.append(.init(slot: UInt32(slot), extent: ActivityLogTransaction.emptyExtent))
        }
        return Prepared(transaction: makeTransaction(updates: updates), evicted: evicted,
                        ringSlot: ActivityLogTransaction.ringSlot(forTransaction: nextTransactionNumber - 1))
    }

    /// The transaction `prepareTransaction` returned is durable: its extents are hot.
    public mutating func committed() {
        committing.removeAll()
    }

    /// The transaction could not be written: its extents are queued again and the table is unchanged
    /// for them (evicted extents stay evicted: their bits were flushed).
    public mutating func failed() {
        for extent in committing {
            if let slot = slotOfExtent.removeValue(forKey: extent) { slots[slot] = ActivityLogTransaction.emptyExtent }
            if queuedSet.insert(extent).inserted { queued.insert(extent, at: 0) }
        }
        committing.removeAll()
    }

    /// Transactions that carry the whole table in their context, so that the ring describes the
    /// current table whatever older blocks it holds (written at attach).
    public mutating func fullTableTransactions() -> [(ringSlot: Int, transaction: ActivityLogTransaction)] {
        contextCursor = 0
        var result: [(Int, ActivityLogTransaction)] = []
        repeat {
            let number = nextTransactionNumber
            result.append((ActivityLogTransaction.ringSlot(forTransaction: number), makeTransaction(updates: [])))
        } while contextCursor != 0
        return result
    }

    private func freeSlot(keeping: Set<UInt32>) -> Int? {
        var best: Int?
        for slot in 0..<slotCount {
            if slots[slot] == ActivityLogTransaction.emptyExtent { return slot }
            if references[slot] == 0, !committing.contains(slots[slot]), !keeping.contains(slots[slot]),
               best.map({ lastUse[slot] < lastUse[$0] }) ?? true {
                best = slot
            }
        }
        return best
    }

    private mutating func makeTransaction(updates: [ActivityLogTransaction.Update]) -> ActivityLogTransaction {
        let count = min(ActivityLogTransaction.maximumContextEntries, slotCount - contextCursor)
        let start = contextCursor
        let context = Array(slots[start..<(start + count)])
        contextCursor = (start + count) % slotCount
        let transaction = ActivityLogTransaction(
            transactionNumber: nextTransactionNumber, updates: updates, contextStartSlot: UInt32(start), context: context)
        nextTransactionNumber += 1
        transactionCount += 1
        return transaction
    }

    /// What the ring says: the valid blocks applied in transaction order (context, then updates).
    public struct Replay: Sendable, Equatable {
        /// The table at the newest transaction, slot by slot (`emptyExtent` for free slots).
        public var slots: [UInt32]
        /// The extents in the table: after a crash, these are out of sync.
        public var extents: [UInt32] { Array(Set(slots.filter { $0 != ActivityLogTransaction.emptyExtent })).sorted() }
        /// The highest transaction number found (0 when the ring is empty).
        public var lastTransactionNumber: UInt64
        /// Blocks that failed to decode (torn or damaged); they are left out.
        public var damagedBlocks: Int

        public init(slots: [UInt32], lastTransactionNumber: UInt64, damagedBlocks: Int) {
            self.slots = slots
            self.lastTransactionNumber = lastTransactionNumber
            self.damagedBlocks = damagedBlocks
        }
    }

    /// Replays ring blocks (nil = never written). `slotCount` bounds the table; slot indices beyond
    /// it are ignored, as they cannot come from this layout.
    public static func replay(_ blocks: [Result<ActivityLogTransaction?, MetadataError>], slotCount: Int) -> Replay {
        var transactions: [ActivityLogTransaction] = []
        var damaged = 0
        for block in blocks {
            switch block {
            case .success(let t?): transactions.append(t)
            case .success(nil): break
            case .failure: damaged += 1
            }
        }
        transactions.sort { $0.transactionNumber < $1.transactionNumber }
        var slots = Array(repeating: ActivityLogTransaction.emptyExtent, count: max(slotCount, 1))
        for t in transactions {
            for (index, extent) in t.context.enumerated() {
                let slot = Int(t.contextStartSlot) + index
                if slot < slots.count { slots[slot] = extent }
            }
            for update in t.updates where Int(update.slot) < slots.count {
                slots[Int(update.slot)] = update.extent
            }
        }
        return Replay(slots: slots, lastTransactionNumber: transactions.last?.transactionNumber ?? 0, damagedBlocks: damaged)
    }
}
