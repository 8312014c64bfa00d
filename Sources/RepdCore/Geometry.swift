/// Fixed sizes of the replicated device and its metadata.
///
/// Everything on disk is measured in bytes; these constants give the granularities.
public enum Geometry {
    /// Bitmap granularity: one dirty bit covers this many bytes of replicated data.
    /// The usable (replicated) size is always a multiple of it.
    public static let blockSize: UInt64 = 4096
    /// The logical sector size of the exported device.
    public static let sectorSize: UInt64 = 512
    /// Activity-log granularity: one hot extent covers this many bytes of data.
    public static let activityLogExtentSize: UInt64 = 4 << 20
    /// Size of one slot of indexed external metadata (`meta-disk path[i]`), DRBD style.
    public static let indexedMetadataSlotSize: UInt64 = 128 << 20

    /// Size of the superblock at the start of every metadata area.
    public static let superblockSize: UInt64 = 4096
    /// Size of one activity-log transaction block.
    public static let activityLogBlockSize: UInt64 = 4096
    /// Number of transaction blocks in the activity-log ring.
    public static let activityLogSlotCount: Int = 64
    /// Size of the activity-log area (64 transaction blocks = 256 KiB).
    public static let activityLogAreaSize: UInt64 = activityLogBlockSize * UInt64(activityLogSlotCount)
    /// Size of one bitmap page, the unit in which the bitmap is written.
    public static let bitmapPageSize: UInt64 = 4096
    /// Number of data blocks described by one bitmap page (4096 bytes × 8 bits = 32768 blocks = 128 MiB).
    public static let blocksPerBitmapPage: Int = Int(bitmapPageSize) * 8

    /// KiB in `blocks` blocks of 4 KiB, saturating (a count from the wire may be anything).
    @inlinable
    public static func kibibytes(ofBlocks blocks: UInt64) -> UInt64 {
        let (kib, overflow) = blocks.multipliedReportingOverflow(by: blockSize / 1024)
        return overflow ? .max : kib
    }

    /// Rounds `value` down to a multiple of `alignment` (a power of two).
    @inlinable
    public static func alignDown(_ value: UInt64, to alignment: UInt64) -> UInt64 {
        value & ~(alignment &- 1)
    }

    /// Rounds `value` up to a multiple of `alignment` (a power of two); nil on overflow.
    @inlinable
    public static func alignUp(_ value: UInt64, to alignment: UInt64) -> UInt64? {
        let (sum, overflow) = value.addingReportingOverflow(alignment &- 1)
        return overflow ? nil : sum & ~(alignment &- 1)
    }

    /// Number of bitmap blocks needed to describe `usableSize` bytes of data (rounded up).
    @inlinable
    public static func blockCount(forUsableSize usableSize: UInt64) -> UInt64 {
        usableSize / blockSize + (usableSize % blockSize == 0 ? 0 : 1)
    }

    /// Bitmap bytes on disk for `usableSize` bytes of data: one bit per block, rounded up to whole pages.
    @inlinable
    public static func bitmapSize(forUsableSize usableSize: UInt64) -> UInt64 {
        let bits = blockCount(forUsableSize: usableSize)
        let bytes = bits / 8 + (bits % 8 == 0 ? 0 : 1)
        let pages = bytes / bitmapPageSize + (bytes % bitmapPageSize == 0 ? 0 : 1)
        return pages * bitmapPageSize
    }

    /// Size of a whole metadata area (superblock + activity log + bitmap) for `usableSize` bytes of data.
    @inlinable
    public static func metadataSize(forUsableSize usableSize: UInt64) -> UInt64 {
        superblockSize + activityLogAreaSize + bitmapSize(forUsableSize: usableSize)
    }
}
