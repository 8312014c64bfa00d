/// Why metadata could not be laid out or read. Descriptions are for operators; callers add context
/// (device path, resource) and the next step to take.
public enum MetadataError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No repd metadata at this place: wrong magic (including an all-zero block).
    case noMetadata
    /// Metadata written in a format version this build does not read.
    case unsupportedVersion(UInt32)
    /// The block's CRC32C does not match its contents: the block is damaged.
    case checksumMismatch(stored: UInt32, computed: UInt32)
    /// The metadata belongs to another resource.
    case foreignResource(found: String, expected: String)
    /// The block is intact but its contents are inconsistent, or the input is truncated.
    case corrupt(String)
    /// The device cannot hold what is needed.
    case deviceTooSmall(needed: UInt64, available: UInt64)
    /// The data device is larger than a 128 MiB indexed metadata slot can describe.
    case tooLargeForIndexedSlot(maximumUsable: UInt64)

    public var description: String {
        switch self {
        case .noMetadata:
            return "no repd metadata (bad magic)"
        case .unsupportedVersion(let version):
            return "unsupported metadata format version \(version) (this build reads version \(Superblock.currentVersion))"
        case .checksumMismatch(let stored, let computed):
            return "metadata checksum mismatch: stored crc32c 0x\(OnDiskBytes.hex(stored, digits: 8)), "
                + "computed 0x\(OnDiskBytes.hex(computed, digits: 8)); the metadata block is damaged"
        case .foreignResource(let found, let expected):
            return "metadata belongs to resource '\(found)', not '\(expected)'"
        case .corrupt(let reason):
            return "corrupt metadata: \(reason)"
        case .deviceTooSmall(let needed, let available):
            return "device too small: \(needed) bytes needed, \(available) bytes available"
        case .tooLargeForIndexedSlot(let maximumUsable):
            return "data device too large for a 128 MiB indexed metadata slot: at most \(maximumUsable) bytes "
                + "can be described; use external metadata without an index, or internal metadata"
        }
    }
}
