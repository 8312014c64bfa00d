import NIOCore
import RepdCore
import RepdEngine

/// A backing disk in memory, block by block, with a page cache: writes land in `volatile` and
/// reach `durable` only with a sync (or FUA). A crash keeps each unsynced block or loses it, at
/// random, as a real page cache's writeback would. A block holds a tag (8 bytes at its start, the
/// rest zero): 0 for never written, trimmed or zeroed, else the simulator's number for one block
/// of one write, so every value can be traced to the write that produced it.
struct SimulatedDisk {
    let blockCount: Int
    private(set) var durable: [UInt64]
    /// Unsynced contents (0 where none; `hasVolatile` says which blocks have some).
    private var volatileTags: [UInt64]
    private var hasVolatile: [Bool]
    private var volatileBlocks: [Int] = []
    /// Blocks whose reads or writes fail (with `on-io-error` tests), while set.
    var failing: Range<Int>?

    init(blockCount: Int) {
        self.blockCount = blockCount
        self.durable = Array(repeating: 0, count: blockCount)
        self.volatileTags = Array(repeating: 0, count: blockCount)
        self.hasVolatile = Array(repeating: false, count: blockCount)
    }

    /// What a read sees now.
    func current(_ block: Int) -> UInt64 { hasVolatile[block] ? volatileTags[block] : durable[block] }

    func fails(_ range: Range<UInt64>) -> Bool {
        guard let failing else { return false }
        return Self.blocks(range).overlaps(failing)
    }

    static func blocks(_ range: Range<UInt64>) -> Range<Int> {
        Int(range.lowerBound / Geometry.blockSize)..<Int((range.upperBound + Geometry.blockSize - 1) / Geometry.blockSize)
    }

    mutating func write(block: Int, tag: UInt64, durable makeDurable: Bool) {
        guard block >= 0 && block < blockCount else { return }
        if makeDurable {
            hasVolatile[block] = false
            durable[block] = tag
        } else {
            if !hasVolatile[block] { volatileBlocks.append(block) }
            hasVolatile[block] = true
            volatileTags[block] = tag
        }
    }

    mutating func sync() {
        for block in volatileBlocks where hasVolatile[block] {
            durable[block] = volatileTags[block]
            hasVolatile[block] = false
        }
        volatileBlocks.removeAll(keepingCapacity: true)
    }

    /// The power goes: every unsynced block survives or not, at random.
    mutating func crash(_ random: inout SplitMix64) {
        for block in volatileBlocks.sorted() where hasVolatile[block] {
            if random.next() & 1 == 1 { durable[block] = volatileTags[block] }
            hasVolatile[block] = false
        }
        volatileBlocks.removeAll(keepingCapacity: true)
    }

    // MARK: payloads

    static func payload(tags: [UInt64]) -> ByteBuffer {
        // Built as one array and copied once: NIOCore is not optimised in debug builds, and byte
        // loops there would dominate the run time of `swift test`.
        var bytes = [UInt8](repeating: 0, count: tags.count * Int(Geometry.blockSize))
        bytes.withUnsafeMutableBytes { raw in
            for (index, tag) in tags.enumerated() {
                raw.storeBytes(of: tag.littleEndian, toByteOffset: index * Int(Geometry.blockSize), as: UInt64.self)
            }
        }
        return ByteBuffer(bytes: bytes)
    }

    /// The tags of a payload (one per 4 KiB block).
    static func tags(of payload: ByteBuffer, blocks: Int) -> [UInt64] {
        (0..<blocks).map { index in
            payload.getInteger(at: payload.readerIndex + index * Int(Geometry.blockSize), endianness: .little, as: UInt64.self) ?? 0
        }
    }

    func read(_ range: Range<UInt64>) -> ByteBuffer {
        Self.payload(tags: Self.blocks(range).map { current($0) })
    }

    /// A digest of a block's content that two disks agree on exactly when their tags do.
    static func digest(tag: UInt64, algorithm: String) -> [UInt8] {
        let length = EngineConfiguration.digestLength(algorithm)
        var mixer = SplitMix64(seed: tag ^ 0x5EED)
        var bytes: [UInt8] = []
        while bytes.count < length { withUnsafeBytes(of: mixer.next()) { bytes += $0 } }
        return Array(bytes.prefix(length))
    }

    /// Applies an engine's local write at completion time.
    mutating func apply(_ write: LocalWrite) {
        for segment in write.segments where !segment.isEmpty {
            for block in Self.blocks(segment) {
                let tag: UInt64
                switch write.kind {
                case .data:
                    let index = Int(UInt64(block) * Geometry.blockSize - write.range.lowerBound) / Int(Geometry.blockSize)
                    tag = write.payload?.getInteger(at: (write.payload?.readerIndex ?? 0) + index * Int(Geometry.blockSize),
                                                    endianness: .little, as: UInt64.self) ?? 0
                case .trim, .zeroes:
                    tag = 0
                }
                self.write(block: block, tag: tag, durable: write.fua)
            }
        }
    }
}

/// The metadata area in memory with the same page-cache rules: bitmap pages, activity-log ring
/// blocks and the superblock; a sync makes everything written durable. With internal metadata a
/// sync of either the data or the metadata syncs both (one file).
struct SimulatedMetadata {
    var durableSuperblock: Superblock
    var volatileSuperblock: Superblock?
    var durablePages: [Int: [UInt8]] = [:]
    var volatilePages: [Int: [UInt8]] = [:]
    var durableRing: [Int: ActivityLogTransaction] = [:]
    var volatileRing: [Int: ActivityLogTransaction] = [:]
    let pageCount: Int

    init(superblock: Superblock, pageCount: Int) {
        self.durableSuperblock = superblock
        self.pageCount = pageCount
    }

    mutating func sync() {
        if let sb = volatileSuperblock { durableSuperblock = sb }
        volatileSuperblock = nil
        durablePages.merge(volatilePages) { $1 }
        volatilePages.removeAll()
        durableRing.merge(volatileRing) { $1 }
        volatileRing.removeAll()
    }

    mutating func crash(_ random: inout SplitMix64) {
        for page in volatilePages.keys.sorted() where random.next() & 1 == 1 { durablePages[page] = volatilePages[page] }
        for slot in volatileRing.keys.sorted() where random.next() & 1 == 1 { durableRing[slot] = volatileRing[slot] }
        if let sb = volatileSuperblock, random.next() & 1 == 1 { durableSuperblock = sb }
        volatilePages.removeAll()
        volatileRing.removeAll()
        volatileSuperblock = nil
    }

    /// Applies a metadata write in `MetadataWrite`'s order (the caller does `syncDataFirst`).
    /// Returns whether the metadata was synced (with internal metadata, the data is synced too).
    mutating func apply(_ write: MetadataWrite) -> Bool {
        var synced = false
        for page in write.bitmapPages { volatilePages[page.index] = page.bytes }
        if write.syncBitmap { sync(); synced = true }
        for entry in write.activityLog {
            volatileRing[entry.ringSlot] = entry.transaction
            sync()
            synced = true
        }
        if let superblock = write.superblock {
            volatileSuperblock = superblock
            sync()
            synced = true
        }
        return synced
    }

    /// What a restarted node reads.
    func load(blockCount: Int) -> (Superblock, DirtyBitmap, ActivityLog.Replay) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pageCount * 4096)
        for page in 0..<pageCount { bytes += durablePages[page] ?? [UInt8](repeating: 0, count: 4096) }
        let bitmap = (try? DirtyBitmap(decoding: bytes, blockCount: blockCount)) ?? DirtyBitmap(blockCount: blockCount)
        let blocks: [Result<ActivityLogTransaction?, MetadataError>] = (0..<Geometry.activityLogSlotCount).map { .success(durableRing[$0]) }
        let replay = ActivityLog.replay(blocks, slotCount: Geometry.activityLogSlotCount * ActivityLogTransaction.maximumContextEntries)
        return (durableSuperblock, bitmap, replay)
    }
}
