/// One 4 KiB block of the activity-log ring. The activity log records which 4 MiB extents may have
/// writes in flight, so that after a crash of a Primary only those extents need resynchronising.
/// Each change of the set of hot extents is one transaction, written to ring slot
/// `transactionNumber % slotCount`. All integers little-endian.
///
/// ```
/// offset size field
///      0    8 magic "REPDALTR"
///      8    8 transaction number (increases by one per transaction; newest valid block wins)
///     16    4 CRC32C of the whole block computed with this field zero
///     20    2 update count n (0...64)
///     22    2 context count m (0...888)
///     24    4 context start slot
///     28    4 reserved (zero)
///     32  256 update slot indices, 64 × u32 (first n used, rest zero)
///    288  256 update extent numbers, 64 × u32 (first n used, rest zero; 0xFFFFFFFF = slot emptied)
///    544 3552 context: 888 × u32 extent numbers of slots start..<start+m (first m used, rest zero)
/// ```
/// Updates say "slot s now holds extent e". The context carries a rolling window of the whole table, so
/// that replaying the ring restores every slot even after old transactions were overwritten.
public struct ActivityLogTransaction: Sendable, Hashable {
    public struct Update: Sendable, Hashable {
        /// Index into the in-memory table of `al-extents` slots.
        public var slot: UInt32
        /// Extent number (data offset / 4 MiB), or `ActivityLogTransaction.emptyExtent`.
        public var extent: UInt32

        public init(slot: UInt32, extent: UInt32) {
            self.slot = slot
            self.extent = extent
        }
    }

    public static let blockSize = 4096
    public static let magic: [UInt8] = Array("REPDALTR".utf8)
    public static let maximumUpdates = 64
    public static let maximumContextEntries = (blockSize - Offset.context) / 4
    /// Extent number meaning "this slot holds no extent".
    public static let emptyExtent: UInt32 = .max

    public enum Offset {
        public static let magic = 0
        public static let transactionNumber = 8
        public static let checksum = 16
        public static let updateCount = 20
        public static let contextCount = 22
        public static let contextStartSlot = 24
        public static let reserved = 28
        public static let updateSlots = 32
        public static let updateExtents = 288
        public static let context = 544
    }

    public var transactionNumber: UInt64
    public var updates: [Update]
    /// Slot number of `context[0]`.
    public var contextStartSlot: UInt32
    /// Extent numbers of slots `contextStartSlot...`.
    public var context: [UInt32]

    public init(transactionNumber: UInt64, updates: [Update], contextStartSlot: UInt32 = 0, context: [UInt32] = []) {
        self.transactionNumber = transactionNumber
        self.updates = updates
        self.contextStartSlot = contextStartSlot
        self.context = context
    }

    /// Ring slot (0..<slotCount) that transaction `number` is written to.
    public static func ringSlot(forTransaction number: UInt64, slotCount: Int = Geometry.activityLogSlotCount) -> Int {
        precondition(slotCount > 0)
        return Int(number % UInt64(slotCount))
    }

    /// The 4096-byte block, CRC filled in. Precondition: at most `maximumUpdates` updates and
    /// `maximumContextEntries` context entries.
    public func encoded() -> [UInt8] {
        precondition(updates.count <= Self.maximumUpdates, "too many activity-log updates in one transaction")
        precondition(context.count <= Self.maximumContextEntries, "too many activity-log context entries")
        var bytes = [UInt8](repeating: 0, count: Self.blockSize)
        for (index, byte) in Self.magic.enumerated() { bytes[Offset.magic + index] = byte }
        OnDiskBytes.store(transactionNumber, into: &bytes, at: Offset.transactionNumber)
        OnDiskBytes.store(UInt16(updates.count), into: &bytes, at: Offset.updateCount)
        OnDiskBytes.store(UInt16(context.count), into: &bytes, at: Offset.contextCount)
        OnDiskBytes.store(contextStartSlot, into: &bytes, at: Offset.contextStartSlot)
        for (index, update) in updates.enumerated() {
            OnDiskBytes.store(update.slot, into: &bytes, at: Offset.updateSlots + 4 * index)
            OnDiskBytes.store(update.extent, into: &bytes, at: Offset.updateExtents + 4 * index)
        }
        for (index, extent) in context.enumerated() {
            OnDiskBytes.store(extent, into: &bytes, at: Offset.context + 4 * index)
        }
        OnDiskBytes.store(CRC32C.checksum(bytes), into: &bytes, at: Offset.checksum)
        return bytes
    }

    /// Decodes one ring block. Returns nil for an all-zero block (a slot never written since create-md).
    /// Other blocks must carry the magic (else `corrupt`), a matching CRC (`checksumMismatch`) and counts
    /// within bounds with unused entries zero (`corrupt`). Only the first 4096 bytes are looked at.
    public static func decode(_ bytes: [UInt8]) throws(MetadataError) -> ActivityLogTransaction? {
        guard bytes.count >= blockSize else {
            throw .corrupt("activity-log block truncated: \(bytes.count) of \(blockSize) bytes")
        }
        var block = bytes.count == blockSize ? bytes : Array(bytes[0..<blockSize])
        guard block[0..<magic.count].elementsEqual(magic) else {
            if block.allSatisfy({ $0 == 0 }) { return nil }
            throw .corrupt("activity-log block has bad magic")
        }
        let stored = OnDiskBytes.load(UInt32.self, from: block, at: Offset.checksum)
        OnDiskBytes.store(UInt32(0), into: &block, at: Offset.checksum)
        let computed = CRC32C.checksum(block)
        guard stored == computed else {
            throw .checksumMismatch(stored: stored, computed: computed)
        }
        let updateCount = Int(OnDiskBytes.load(UInt16.self, from: block, at: Offset.updateCount))
        let contextCount = Int(OnDiskBytes.load(UInt16.self, from: block, at: Offset.contextCount))
        guard updateCount <= maximumUpdates else {
            throw .corrupt("activity-log block has \(updateCount) updates, at most \(maximumUpdates) allowed")
        }
        guard contextCount <= maximumContextEntries else {
            throw .corrupt("activity-log block has \(contextCount) context entries, at most \(maximumContextEntries) allowed")
        }
        func zero(_ range: Range<Int>) -> Bool { block[range].allSatisfy { $0 == 0 } }
        guard zero(Offset.reserved..<Offset.updateSlots),
              zero((Offset.updateSlots + 4 * updateCount)..<Offset.updateExtents),
              zero((Offset.updateExtents + 4 * updateCount)..<Offset.context),
              zero((Offset.context + 4 * contextCount)..<blockSize)
        else {
            throw .corrupt("activity-log block has data in unused entries")
        }
        var updates: [Update] = []
        updates.reserveCapacity(updateCount)
        for index in 0..<updateCount {
            updates.append(Update(
                slot: OnDiskBytes.load(UInt32.self, from: block, at: Offset.updateSlots + 4 * index),
                extent: OnDiskBytes.load(UInt32.self, from: block, at: Offset.updateExtents + 4 * index)))
        }
        var context: [UInt32] = []
        context.reserveCapacity(contextCount)
        for index in 0..<contextCount {
            context.append(OnDiskBytes.load(UInt32.self, from: block, at: Offset.context + 4 * index))
        }
        return ActivityLogTransaction(
            transactionNumber: OnDiskBytes.load(UInt64.self, from: block, at: Offset.transactionNumber),
            updates: updates,
            contextStartSlot: OnDiskBytes.load(UInt32.self, from: block, at: Offset.contextStartSlot),
            context: context)
    }
}
