/// The dirty (out-of-sync) bitmap: one bit per 4 KiB block of usable data.
///
/// On disk, bit i of byte j is block `j * 8 + i`, in 4096-byte pages (one page = 32768 blocks = 128 MiB
/// of data). In memory the bits live in little-endian-ordered `UInt64` words, so word w's bit b is block
/// `w * 64 + b` and the on-disk bytes are just the words stored little-endian. Bits past `blockCount` are
/// always zero. The bitmap does no I/O: mutations return the page indices the caller must write.
public struct DirtyBitmap: Sendable, Hashable {
    static let wordsPerPage = Int(Geometry.bitmapPageSize) / 8
    static let blocksPerPage = Geometry.blocksPerBitmapPage

    /// Whole pages of words; words past the last block are zero.
    private var words: [UInt64]
    public private(set) var blockCount: Int
    /// Number of set bits, maintained on every change.
    public private(set) var outOfSyncCount: Int

    /// An all-clean bitmap for `blockCount` blocks.
    public init(blockCount: Int) {
        precondition(blockCount >= 0, "negative block count")
        self.blockCount = blockCount
        self.outOfSyncCount = 0
        let pages = (blockCount + Self.blocksPerPage - 1) / Self.blocksPerPage
        self.words = [UInt64](repeating: 0, count: pages * Self.wordsPerPage)
    }

    /// Reads the bitmap area. `bytes` may be longer than needed (the whole area); it must hold at least
    /// `ceil(blockCount / 8)` bytes, and every bit past `blockCount` must be zero, else `corrupt`.
    public init(decoding bytes: [UInt8], blockCount: Int) throws(MetadataError) {
        self.init(blockCount: blockCount)
        let needed = (blockCount + 7) / 8
        guard bytes.count >= needed else {
            throw .corrupt("bitmap truncated: \(bytes.count) bytes for \(blockCount) blocks (needs \(needed))")
        }
        let wordCount = words.count
        var count = 0
        var stray = false
        bytes.withUnsafeBytes { raw in
            words.withUnsafeMutableBufferPointer { store in
                let fullWords = min(wordCount, raw.count / 8)
                for index in 0..<fullWords {
                    store[index] = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
                }
                if fullWords < wordCount, raw.count > fullWords * 8 {
                    var word: UInt64 = 0
                    for byte in (fullWords * 8)..<raw.count {
                        word |= UInt64(raw[byte]) << UInt64((byte - fullWords * 8) * 8)
                    }
                    store[fullWords] = word
                }
                // Bits past blockCount: the tail of the last used word, later words, and any extra bytes.
                let lastUsedWord = blockCount / 64
                if lastUsedWord < wordCount {
                    let tailMask: UInt64 = blockCount % 64 == 0 ? ~0 : ~((1 << UInt64(blockCount % 64)) - 1)
                    if store[lastUsedWord] & tailMask != 0 { stray = true }
                    for index in (lastUsedWord + 1)..<wordCount where store[index] != 0 { stray = true }
                }
                if raw.count > wordCount * 8 {
                    for byte in (wordCount * 8)..<raw.count where raw[byte] != 0 { stray = true }
                }
                for index in 0..<wordCount { count += store[index].nonzeroBitCount }
            }
        }
        guard !stray else {
            throw .corrupt("bitmap has bits set past the last of \(blockCount) blocks")
        }
        outOfSyncCount = count
    }

    /// Number of 4 KiB pages of the on-disk bitmap.
    public var pageCount: Int { words.count / Self.wordsPerPage }

    /// Bytes of data marked out of sync.
    public var outOfSyncBytes: UInt64 { UInt64(outOfSyncCount) * Geometry.blockSize }

    public func isOutOfSync(block: Int) -> Bool {
        guard block >= 0, block < blockCount else { return false }
        return words[block >> 6] & (1 << UInt64(block & 63)) != 0
    }

    /// Marks every 4 KiB block touched by the byte range. Returns the indices of the 4 KiB bitmap pages
    /// (page = 4096 bytes of bitmap) that changed and must be written.
    /// The range is clamped to the device; an empty range changes nothing.
    @discardableResult
    public mutating func markOutOfSync(byteRange: Range<UInt64>) -> [Int] {
        guard !byteRange.isEmpty else { return [] }
        let first = byteRange.lowerBound / Geometry.blockSize
        let end = (byteRange.upperBound - 1) / Geometry.blockSize + 1
        guard let blocks = clamped(first, end) else { return [] }
        return update(blocks, set: true)
    }

    /// Clears only blocks fully covered by the range (a partial block stays out of sync).
    @discardableResult
    public mutating func markInSync(byteRange: Range<UInt64>) -> [Int] {
        guard !byteRange.isEmpty else { return [] }
        let lower = byteRange.lowerBound
        let first = lower / Geometry.blockSize + (lower % Geometry.blockSize == 0 ? 0 : 1)
        let end = byteRange.upperBound / Geometry.blockSize
        guard let blocks = clamped(first, end) else { return [] }
        return update(blocks, set: false)
    }

    /// Grows the bitmap to `blockCount` blocks (online resize); the new blocks are in sync. Returns
    /// the pages that are new (to be written).
    @discardableResult
    public mutating func grow(to newCount: Int) -> [Int] {
        precondition(newCount >= blockCount, "a bitmap only grows")
        let oldPages = pageCount
        let pages = (newCount + Self.blocksPerPage - 1) / Self.blocksPerPage
        if pages * Self.wordsPerPage > words.count {
            words.append(contentsOf: repeatElement(0, count: pages * Self.wordsPerPage - words.count))
        }
        blockCount = newCount
        return Array(oldPages..<pages)
    }

    /// Marks the whole device out of sync (full resync). Returns the pages that changed.
    @discardableResult
    public mutating func markAllOutOfSync() -> [Int] {
        update(0..<blockCount, set: true)
    }

    /// Marks the whole device in sync. Returns the pages that changed.
    @discardableResult
    public mutating func clearAll() -> [Int] {
        update(0..<blockCount, set: false)
    }

    /// Marks out of sync every block that is out of sync in `other` (bitmap exchange with a peer).
    /// Both bitmaps must describe the same number of blocks. Returns the pages that changed.
    @discardableResult
    public mutating func formUnion(_ other: DirtyBitmap) -> [Int] {
        precondition(other.blockCount == blockCount, "bitmaps of different sizes")
        var changed: [Int] = []
        var count = outOfSyncCount
        words.withUnsafeMutableBufferPointer { store in
            other.words.withUnsafeBufferPointer { source in
                for index in 0..<store.count where source[index] & ~store[index] != 0 {
                    let old = store[index]
                    store[index] = old | source[index]
                    count += store[index].nonzeroBitCount - old.nonzeroBitCount
                    let page = index / Self.wordsPerPage
                    if changed.last != page { changed.append(page) }
                }
            }
        }
        outOfSyncCount = count
        return changed
    }

    /// Page `index` (0..<pageCount) exactly as stored on disk: 4096 bytes.
    public func page(_ index: Int) -> [UInt8] {
        precondition(index >= 0 && index < pageCount, "bitmap page \(index) out of range 0..<\(pageCount)")
        return bytes(words: (index * Self.wordsPerPage)..<((index + 1) * Self.wordsPerPage))
    }

    /// The whole bitmap area as stored on disk: `pageCount × 4096` bytes.
    public func encoded() -> [UInt8] {
        bytes(words: 0..<words.count)
    }

    /// Byte ranges of runs of out-of-sync blocks, in ascending order, at most `limit` of them.
    public func outOfSyncRanges(limit: Int) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        var block = 0
        while result.count < limit, let start = nextOutOfSync(fromBlock: block) {
            let end = nextInSync(fromBlock: start)
            result.append((UInt64(start) * Geometry.blockSize)..<(UInt64(end) * Geometry.blockSize))
            block = end
        }
        return result
    }

    /// The first out-of-sync block at or after `fromBlock`, or nil.
    public func nextOutOfSync(fromBlock: Int) -> Int? {
        let start = max(fromBlock, 0)
        guard start < blockCount else { return nil }
        return words.withUnsafeBufferPointer { store -> Int? in
            var index = start >> 6
            var word = store[index] & (~0 << UInt64(start & 63))
            let lastWord = (blockCount - 1) >> 6
            while true {
                if word != 0 {
                    let block = (index << 6) + word.trailingZeroBitCount
                    return block < blockCount ? block : nil
                }
                index += 1
                if index > lastWord { return nil }
                word = store[index]
            }
        }
    }

    /// The first in-sync block at or after `fromBlock`, or `blockCount` when there is none.
    public func nextInSync(fromBlock: Int) -> Int {
        let start = max(fromBlock, 0)
        guard start < blockCount else { return blockCount }
        return words.withUnsafeBufferPointer { store -> Int in
            var index = start >> 6
            var word = ~store[index] & (~0 << UInt64(start & 63))
            let lastWord = (blockCount - 1) >> 6
            while true {
                if word != 0 {
                    return min((index << 6) + word.trailingZeroBitCount, blockCount)
                }
                index += 1
                if index > lastWord { return blockCount }
                word = ~store[index]
            }
        }
    }

    // MARK: - Internals

    /// Block range `first..<end` clamped to the device, nil when empty.
    private func clamped(_ first: UInt64, _ end: UInt64) -> Range<Int>? {
        let limit = UInt64(blockCount)
        let upper = min(end, limit)
        guard first < upper else { return nil }
        return Int(first)..<Int(upper)
    }

    /// Sets or clears the bits of `blocks`, keeping the count; returns changed pages in ascending order.
    private mutating func update(_ blocks: Range<Int>, set: Bool) -> [Int] {
        guard !blocks.isEmpty else { return [] }
        var changed: [Int] = []
        var count = outOfSyncCount
        let firstWord = blocks.lowerBound >> 6
        let lastWord = (blocks.upperBound - 1) >> 6
        words.withUnsafeMutableBufferPointer { store in
            for index in firstWord...lastWord {
                let base = index << 6
                let low = max(blocks.lowerBound, base) - base
                let high = min(blocks.upperBound, base + 64) - base
                let width = high - low
                let mask: UInt64 = width == 64 ? ~0 : ((1 << UInt64(width)) - 1) << UInt64(low)
                let old = store[index]
                let new = set ? old | mask : old & ~mask
                guard new != old else { continue }
                store[index] = new
                count += new.nonzeroBitCount - old.nonzeroBitCount
                let page = index / Self.wordsPerPage
                if changed.last != page { changed.append(page) }
            }
        }
        outOfSyncCount = count
        return changed
    }

    private func bytes(words range: Range<Int>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: range.count * 8) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            words.withUnsafeBufferPointer { store in
                for (position, index) in range.enumerated() {
                    raw.storeBytes(of: store[index].littleEndian, toByteOffset: position * 8, as: UInt64.self)
                }
            }
            initialized = range.count * 8
        }
    }
}
