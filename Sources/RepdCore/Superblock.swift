/// The 4 KiB superblock at offset 0 of every metadata area. All integers little-endian.
///
/// ```
/// offset size field
///      0    8 magic "REPDMETA"
///      8    4 format version (1)
///     12    4 superblock size (4096)
///     16    4 flags (MetadataFlags)
///     20    4 bitmap block size (4096)
///     24    4 activity-log extent size (4194304)
///     28    4 activity-log extents (configured al-extents)
///     32    8 usable size in bytes
///     40    8 current generation
///     48    8 bitmap generation
///     56    8 history generation 1
///     64    8 history generation 2
///     72    8 device UUID
///     80    8 metadata area offset (absolute)
///     88    8 metadata area size
///     96    8 activity-log offset (relative to the area)
///    104    8 activity-log size
///    112    8 bitmap offset (relative to the area)
///    120    8 bitmap size
///    128    8 update counter
///    136    8 created at (Unix seconds)
///    144   64 resource name (UTF-8, NUL padded)
///    208   64 node name (UTF-8, NUL padded)
///    272 3820 reserved, written as zero, ignored when read
///   4092    4 CRC32C of bytes 0..<4092
/// ```
/// Magic, version and the CRC position are invariant across format versions.
public struct Superblock: Sendable, Hashable, Codable {
    public static let size = 4096
    public static let magic: [UInt8] = Array("REPDMETA".utf8)
    public static let currentVersion: UInt32 = 1
    /// Width of the resource-name and node-name fields; longer names are cut on encode.
    public static let maximumNameLength = 64

    /// Byte offsets of the fields (see the table above and Docs/OnDiskFormat.md).
    public enum Offset {
        public static let magic = 0
        public static let version = 8
        public static let superblockSize = 12
        public static let flags = 16
        public static let bitmapBlockSize = 20
        public static let activityLogExtentSize = 24
        public static let activityLogExtents = 28
        public static let usableSize = 32
        public static let currentGeneration = 40
        public static let bitmapGeneration = 48
        public static let historyGeneration1 = 56
        public static let historyGeneration2 = 64
        public static let deviceUUID = 72
        public static let metadataOffset = 80
        public static let metadataSize = 88
        public static let activityLogOffset = 96
        public static let activityLogSize = 104
        public static let bitmapOffset = 112
        public static let bitmapSize = 120
        public static let updateCounter = 128
        public static let createdAt = 136
        public static let resourceName = 144
        public static let nodeName = 208
        public static let reserved = 272
        public static let checksum = 4092
    }

    public var version: UInt32
    public var flags: MetadataFlags
    /// Number of activity-log extents (DRBD `al-extents`).
    public var alExtents: UInt32
    public var generation: GenerationIdentifiers
    public var layout: MetadataLayout
    /// Random identifier of this disk, fixed at create-md.
    public var deviceUUID: UInt64
    /// Incremented by the caller on every superblock write; the newer copy has the larger value.
    public var updateCounter: UInt64
    /// Creation time, Unix seconds.
    public var createdAt: UInt64
    public var resourceName: String
    public var nodeName: String

    /// Fresh metadata as written by create-md: generation `justCreated` (4), no flags (Inconsistent),
    /// update counter 0. Time and device UUID are parameters so that callers (and tests) choose them.
    public init(layout: MetadataLayout, resourceName: String, nodeName: String, deviceUUID: UInt64, createdAt: UInt64, alExtents: UInt32 = 1237) {
        self.version = Superblock.currentVersion
        self.flags = []
        self.alExtents = alExtents
        self.generation = GenerationIdentifiers(current: GenerationIdentifiers.justCreated)
        self.layout = layout
        self.deviceUUID = deviceUUID
        self.updateCounter = 0
        self.createdAt = createdAt
        self.resourceName = resourceName
        self.nodeName = nodeName
    }

    /// True when `name` fits a name field unchanged: non-empty UTF-8, at most 64 bytes, no NUL.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return !bytes.isEmpty && bytes.count <= maximumNameLength && !bytes.contains(0)
    }

    /// The 4096-byte on-disk form, CRC filled in.
    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Superblock.size)
        for (index, byte) in Superblock.magic.enumerated() { bytes[Offset.magic + index] = byte }
        OnDiskBytes.store(version, into: &bytes, at: Offset.version)
        OnDiskBytes.store(UInt32(Superblock.size), into: &bytes, at: Offset.superblockSize)
        OnDiskBytes.store(flags.rawValue, into: &bytes, at: Offset.flags)
        OnDiskBytes.store(UInt32(Geometry.blockSize), into: &bytes, at: Offset.bitmapBlockSize)
        OnDiskBytes.store(UInt32(Geometry.activityLogExtentSize), into: &bytes, at: Offset.activityLogExtentSize)
        OnDiskBytes.store(alExtents, into: &bytes, at: Offset.activityLogExtents)
        OnDiskBytes.store(layout.usableSize, into: &bytes, at: Offset.usableSize)
        let history = GenerationIdentifiers.normalised(generation.history)
        OnDiskBytes.store(generation.current, into: &bytes, at: Offset.currentGeneration)
        OnDiskBytes.store(generation.bitmap, into: &bytes, at: Offset.bitmapGeneration)
        OnDiskBytes.store(history[0], into: &bytes, at: Offset.historyGeneration1)
        OnDiskBytes.store(history[1], into: &bytes, at: Offset.historyGeneration2)
        OnDiskBytes.store(deviceUUID, into: &bytes, at: Offset.deviceUUID)
        OnDiskBytes.store(layout.metadataOffset, into: &bytes, at: Offset.metadataOffset)
        OnDiskBytes.store(layout.metadataSize, into: &bytes, at: Offset.metadataSize)
        OnDiskBytes.store(layout.activityLogOffset, into: &bytes, at: Offset.activityLogOffset)
        OnDiskBytes.store(layout.activityLogSize, into: &bytes, at: Offset.activityLogSize)
        OnDiskBytes.store(layout.bitmapOffset, into: &bytes, at: Offset.bitmapOffset)
        OnDiskBytes.store(layout.bitmapSize, into: &bytes, at: Offset.bitmapSize)
        OnDiskBytes.store(updateCounter, into: &bytes, at: Offset.updateCounter)
        OnDiskBytes.store(createdAt, into: &bytes, at: Offset.createdAt)
        OnDiskBytes.storeName(resourceName, into: &bytes, at: Offset.resourceName, width: Superblock.maximumNameLength)
        OnDiskBytes.storeName(nodeName, into: &bytes, at: Offset.nodeName, width: Superblock.maximumNameLength)
        let crc = Superblock.computedChecksum(bytes)
        OnDiskBytes.store(crc, into: &bytes, at: Offset.checksum)
        return bytes
    }

    static func computedChecksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<Offset.checksum])) }
    }

    /// Decodes and checks magic, version, size, CRC, layout sanity (offsets inside the area, bitmap big enough
    /// for usableSize), and (if expectedResource != nil) the resource name.
    ///
    /// Only the first 4096 bytes are looked at; fewer is `corrupt`. Order of checks: magic (`noMetadata`),
    /// CRC (`checksumMismatch`), version (`unsupportedVersion`), fields and layout (`corrupt`),
    /// resource (`foreignResource`). The CRC is checked before the version because a damaged version field
    /// is damage, not a newer format.
    public static func decode(_ bytes: [UInt8], expectedResource: String?) throws(MetadataError) -> Superblock {
        guard bytes.count >= size else {
            throw .corrupt("superblock truncated: \(bytes.count) of \(size) bytes")
        }
        let block = bytes.count == size ? bytes : Array(bytes[0..<size])
        guard block[0..<magic.count].elementsEqual(magic) else {
            throw .noMetadata
        }
        let stored = OnDiskBytes.load(UInt32.self, from: block, at: Offset.checksum)
        let computed = computedChecksum(block)
        guard stored == computed else {
            throw .checksumMismatch(stored: stored, computed: computed)
        }
        let version = OnDiskBytes.load(UInt32.self, from: block, at: Offset.version)
        guard version == currentVersion else {
            throw .unsupportedVersion(version)
        }
        func expect(_ offset: Int, _ value: UInt64, _ name: String) throws(MetadataError) {
            let found = OnDiskBytes.load(UInt32.self, from: block, at: offset)
            guard UInt64(found) == value else {
                throw .corrupt("\(name) is \(found), expected \(value)")
            }
        }
        try expect(Offset.superblockSize, UInt64(size), "superblock size")
        try expect(Offset.bitmapBlockSize, Geometry.blockSize, "bitmap block size")
        try expect(Offset.activityLogExtentSize, Geometry.activityLogExtentSize, "activity-log extent size")

        let alExtents = OnDiskBytes.load(UInt32.self, from: block, at: Offset.activityLogExtents)
        guard alExtents > 0 else {
            throw .corrupt("activity-log extent count is 0")
        }
        let layout = MetadataLayout(
            metadataOffset: OnDiskBytes.load(UInt64.self, from: block, at: Offset.metadataOffset),
            metadataSize: OnDiskBytes.load(UInt64.self, from: block, at: Offset.metadataSize),
            usableSize: OnDiskBytes.load(UInt64.self, from: block, at: Offset.usableSize),
            activityLogOffset: OnDiskBytes.load(UInt64.self, from: block, at: Offset.activityLogOffset),
            activityLogSize: OnDiskBytes.load(UInt64.self, from: block, at: Offset.activityLogSize),
            bitmapOffset: OnDiskBytes.load(UInt64.self, from: block, at: Offset.bitmapOffset),
            bitmapSize: OnDiskBytes.load(UInt64.self, from: block, at: Offset.bitmapSize))
        try layout.validate()

        guard let resourceName = OnDiskBytes.loadName(from: block, at: Offset.resourceName, width: maximumNameLength) else {
            throw .corrupt("resource name is not valid UTF-8")
        }
        guard let nodeName = OnDiskBytes.loadName(from: block, at: Offset.nodeName, width: maximumNameLength) else {
            throw .corrupt("node name is not valid UTF-8")
        }
        if let expectedResource, resourceName != expectedResource {
            throw .foreignResource(found: resourceName, expected: expectedResource)
        }

        var superblock = Superblock(
            layout: layout, resourceName: resourceName, nodeName: nodeName,
            deviceUUID: OnDiskBytes.load(UInt64.self, from: block, at: Offset.deviceUUID),
            createdAt: OnDiskBytes.load(UInt64.self, from: block, at: Offset.createdAt),
            alExtents: alExtents)
        superblock.version = version
        superblock.flags = MetadataFlags(rawValue: OnDiskBytes.load(UInt32.self, from: block, at: Offset.flags))
        superblock.generation = GenerationIdentifiers(
            current: OnDiskBytes.load(UInt64.self, from: block, at: Offset.currentGeneration),
            bitmap: OnDiskBytes.load(UInt64.self, from: block, at: Offset.bitmapGeneration),
            history: [
                OnDiskBytes.load(UInt64.self, from: block, at: Offset.historyGeneration1),
                OnDiskBytes.load(UInt64.self, from: block, at: Offset.historyGeneration2),
            ])
        superblock.updateCounter = OnDiskBytes.load(UInt64.self, from: block, at: Offset.updateCounter)
        return superblock
    }
}
