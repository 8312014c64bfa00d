/// Where the metadata area lies and how it is divided.
///
/// The area is: superblock (4 KiB) at area offset 0, the activity-log ring (256 KiB) right after it,
/// then the dirty bitmap (one bit per 4 KiB of usable data, rounded up to 4 KiB pages).
/// Three placements exist: internal (area at the end of the backing device), external whole device
/// (area at offset 0 of the metadata device), external indexed (128 MiB slot `index` of the metadata device).
public struct MetadataLayout: Sendable, Hashable, Codable {
    /// Absolute byte offset of the area on the metadata device (the backing device for internal metadata).
    public var metadataOffset: UInt64
    /// Size of the area in bytes (for indexed metadata: the whole 128 MiB slot).
    public var metadataSize: UInt64
    /// Replicated data bytes, a multiple of 4096.
    public var usableSize: UInt64
    /// Activity-log ring, relative to `metadataOffset`.
    public var activityLogOffset: UInt64
    public var activityLogSize: UInt64
    /// Dirty bitmap, relative to `metadataOffset`.
    public var bitmapOffset: UInt64
    public var bitmapSize: UInt64

    public init(
        metadataOffset: UInt64, metadataSize: UInt64, usableSize: UInt64,
        activityLogOffset: UInt64, activityLogSize: UInt64, bitmapOffset: UInt64, bitmapSize: UInt64
    ) {
        self.metadataOffset = metadataOffset
        self.metadataSize = metadataSize
        self.usableSize = usableSize
        self.activityLogOffset = activityLogOffset
        self.activityLogSize = activityLogSize
        self.bitmapOffset = bitmapOffset
        self.bitmapSize = bitmapSize
    }

    /// Number of 4 KiB data blocks, i.e. bits in the bitmap.
    public var blockCount: Int { Int(usableSize / Geometry.blockSize) }

    /// Number of 4 KiB pages in the bitmap area.
    public var bitmapPageCount: Int { Int(bitmapSize / Geometry.bitmapPageSize) }

    /// Number of 4 KiB transaction blocks in the activity-log ring.
    public var activityLogSlotCount: Int { Int(activityLogSize / Geometry.activityLogBlockSize) }

    /// Absolute offset of the superblock on the metadata device.
    public var superblockOffset: UInt64 { metadataOffset }

    /// Absolute offset of bitmap page `page` on the metadata device.
    public func bitmapPageOffset(_ page: Int) -> UInt64 {
        precondition(page >= 0 && page < bitmapPageCount, "bitmap page \(page) out of range")
        return metadataOffset + bitmapOffset + UInt64(page) * Geometry.bitmapPageSize
    }

    /// Absolute offset of activity-log ring slot `slot` on the metadata device.
    public func activityLogSlotOffset(_ slot: Int) -> UInt64 {
        precondition(slot >= 0 && slot < activityLogSlotCount, "activity-log slot \(slot) out of range")
        return metadataOffset + activityLogOffset + UInt64(slot) * Geometry.activityLogBlockSize
    }

    /// A fresh area for `usableSize` bytes of data at `metadataOffset`, with the standard division.
    static func standard(metadataOffset: UInt64, usableSize: UInt64, areaSize: UInt64? = nil) -> MetadataLayout {
        let bitmapSize = Geometry.bitmapSize(forUsableSize: usableSize)
        return MetadataLayout(
            metadataOffset: metadataOffset,
            metadataSize: areaSize ?? Geometry.metadataSize(forUsableSize: usableSize),
            usableSize: usableSize,
            activityLogOffset: Geometry.superblockSize,
            activityLogSize: Geometry.activityLogAreaSize,
            bitmapOffset: Geometry.superblockSize + Geometry.activityLogAreaSize,
            bitmapSize: bitmapSize)
    }

    /// Internal metadata: the area sits, 4 KiB aligned, at the end of the backing device, and the data in
    /// front of it. `usableSize` is the largest multiple of 4096 with
    /// `usableSize + metadataSize(usableSize) <= backingSize`; the area starts at
    /// `alignDown(backingSize, 4096) - metadataSize`.
    public static func `internal`(backingSize: UInt64) throws(MetadataError) -> MetadataLayout {
        let alignedEnd = Geometry.alignDown(backingSize, to: Geometry.blockSize)
        // f(u) = u + metadataSize(u) is strictly increasing in u, so binary-search the largest block count.
        func fits(_ blocks: UInt64) -> Bool {
            let usable = blocks * Geometry.blockSize
            let (total, overflow) = usable.addingReportingOverflow(Geometry.metadataSize(forUsableSize: usable))
            return !overflow && total <= alignedEnd
        }
        var low: UInt64 = 0  // largest count known to fit (0 always "fits" as a bound)
        var high: UInt64 = alignedEnd / Geometry.blockSize + 1  // smallest count known not to fit
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if fits(middle) { low = middle } else { high = middle }
        }
        guard low > 0, fits(low) else {
            let minimum = Geometry.blockSize + Geometry.metadataSize(forUsableSize: Geometry.blockSize)
            throw .deviceTooSmall(needed: minimum, available: backingSize)
        }
        let usable = low * Geometry.blockSize
        let size = Geometry.metadataSize(forUsableSize: usable)
        return .standard(metadataOffset: alignedEnd - size, usableSize: usable)
    }

    /// Largest data size one 128 MiB indexed slot can describe:
    /// (128 MiB − 4 KiB superblock − 256 KiB activity log) × 8 bits × 4 KiB = 4,389,322,358,784 bytes.
    public static let maximumIndexedUsableSize: UInt64 =
        (Geometry.indexedMetadataSlotSize - Geometry.superblockSize - Geometry.activityLogAreaSize) * 8 * Geometry.blockSize

    /// External metadata. The data uses the whole backing device, rounded down to 4096.
    /// - `index == nil`: flexible external metadata, the area starts at offset 0 of the metadata device and
    ///   is exactly as large as needed.
    /// - `index == i`: DRBD-style indexed metadata, the area is the fixed 128 MiB slot at `i × 128 MiB`.
    /// `metaDeviceSize` is the size of the metadata device, or nil for a regular file that may be extended
    /// (then nothing is checked against it).
    public static func external(backingSize: UInt64, metaDeviceSize: UInt64?, index: Int?) throws(MetadataError) -> MetadataLayout {
        let usable = Geometry.alignDown(backingSize, to: Geometry.blockSize)
        guard usable > 0 else {
            throw .deviceTooSmall(needed: Geometry.blockSize, available: backingSize)
        }
        guard let index else {
            let needed = Geometry.metadataSize(forUsableSize: usable)
            if let metaDeviceSize, metaDeviceSize < needed {
                throw .deviceTooSmall(needed: needed, available: metaDeviceSize)
            }
            return .standard(metadataOffset: 0, usableSize: usable)
        }
        guard index >= 0 else {
            throw .corrupt("negative metadata index \(index)")
        }
        guard usable <= maximumIndexedUsableSize else {
            throw .tooLargeForIndexedSlot(maximumUsable: maximumIndexedUsableSize)
        }
        let slot = Geometry.indexedMetadataSlotSize
        let (offset, overflow1) = UInt64(index).multipliedReportingOverflow(by: slot)
        let (end, overflow2) = offset.addingReportingOverflow(slot)
        guard !overflow1, !overflow2 else {
            throw .corrupt("metadata index \(index) is out of range")
        }
        if let metaDeviceSize, metaDeviceSize < end {
            throw .deviceTooSmall(needed: end, available: metaDeviceSize)
        }
        return .standard(metadataOffset: offset, usableSize: usable, areaSize: slot)
    }

    /// Checks that the layout is self-consistent: everything 4 KiB aligned, superblock, activity log and
    /// bitmap inside the area and not overlapping, and the bitmap large enough for `usableSize`.
    /// It does not check the placement against a device; compare with the layout computed for it.
    public func validate() throws(MetadataError) {
        let block = Geometry.blockSize
        func aligned(_ value: UInt64) -> Bool { value % block == 0 }
        guard usableSize > 0, aligned(usableSize) else {
            throw .corrupt("usable size \(usableSize) is not a positive multiple of \(block)")
        }
        guard aligned(metadataOffset), aligned(metadataSize) else {
            throw .corrupt("metadata area offset \(metadataOffset) or size \(metadataSize) is not \(block)-aligned")
        }
        guard metadataOffset.addingReportingOverflow(metadataSize).overflow == false else {
            throw .corrupt("metadata area \(metadataOffset)+\(metadataSize) overflows")
        }
        guard aligned(activityLogOffset), aligned(activityLogSize), activityLogSize > 0 else {
            throw .corrupt("activity log offset \(activityLogOffset) or size \(activityLogSize) is not a positive multiple of \(block)")
        }
        guard aligned(bitmapOffset), aligned(bitmapSize) else {
            throw .corrupt("bitmap offset \(bitmapOffset) or size \(bitmapSize) is not \(block)-aligned")
        }
        func end(_ offset: UInt64, _ size: UInt64) -> UInt64? {
            let (sum, overflow) = offset.addingReportingOverflow(size)
            return overflow ? nil : sum
        }
        guard let alEnd = end(activityLogOffset, activityLogSize),
              activityLogOffset >= Geometry.superblockSize, alEnd <= metadataSize
        else {
            throw .corrupt("activity log [\(activityLogOffset), +\(activityLogSize)) lies outside the metadata area of \(metadataSize) bytes")
        }
        guard let bitmapEnd = end(bitmapOffset, bitmapSize),
              bitmapOffset >= Geometry.superblockSize, bitmapEnd <= metadataSize
        else {
            throw .corrupt("bitmap [\(bitmapOffset), +\(bitmapSize)) lies outside the metadata area of \(metadataSize) bytes")
        }
        guard bitmapEnd <= activityLogOffset || alEnd <= bitmapOffset else {
            throw .corrupt("bitmap and activity log overlap")
        }
        let needed = Geometry.bitmapSize(forUsableSize: usableSize)
        guard bitmapSize >= needed else {
            throw .corrupt("bitmap of \(bitmapSize) bytes is too small for \(usableSize) bytes of data (needs \(needed))")
        }
    }
}
