/// Flags in the superblock, with DRBD's `MDF_*` meaning. The empty set is a freshly created,
/// Inconsistent disk.
public struct MetadataFlags: OptionSet, Sendable, Hashable, Codable {
    public var rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// The local data is consistent (not in the middle of a sync target). DRBD `MDF_CONSISTENT`.
    public static let consistent = MetadataFlags(rawValue: 1 << 0)
    /// The disk was UpToDate when last detached/shut down. DRBD `MDF_WAS_UP_TO_DATE`.
    public static let wasUpToDate = MetadataFlags(rawValue: 1 << 1)
    /// The node is (or was, when it crashed) Primary. DRBD `MDF_PRIMARY_IND`.
    public static let primaryIndicator = MetadataFlags(rawValue: 1 << 2)
    /// The node crashed while Primary: the activity log must be applied. DRBD `MDF_CRASHED_PRIMARY`.
    public static let crashedPrimary = MetadataFlags(rawValue: 1 << 3)
    /// The peer's disk is known to be Outdated. DRBD `MDF_PEER_OUT_DATED`.
    public static let peerOutdated = MetadataFlags(rawValue: 1 << 4)
    /// The whole device must be resynchronised on next connect. DRBD `MDF_FULL_SYNC`.
    public static let fullSyncNeeded = MetadataFlags(rawValue: 1 << 5)
    /// The activity log was cleanly emptied at shutdown. DRBD `MDF_AL_CLEAN`.
    public static let activityLogClean = MetadataFlags(rawValue: 1 << 6)
    /// The node was connected to its peer. DRBD `MDF_CONNECTED_IND`.
    public static let connectedIndicator = MetadataFlags(rawValue: 1 << 7)
    /// The disk was detached after an I/O error or a disk-timeout (repd; DRBD keeps this in memory
    /// only): the node does not use it again until the operator runs `repd attach`.
    public static let diskFailed = MetadataFlags(rawValue: 1 << 8)

    /// Every flag with its `dump-md` name, in bit order.
    public static let known: [(flag: MetadataFlags, name: String)] = [
        (.consistent, "consistent"),
        (.wasUpToDate, "was-up-to-date"),
        (.primaryIndicator, "primary-indicator"),
        (.crashedPrimary, "crashed-primary"),
        (.peerOutdated, "peer-outdated"),
        (.fullSyncNeeded, "full-sync-needed"),
        (.activityLogClean, "activity-log-clean"),
        (.connectedIndicator, "connected-indicator"),
        (.diskFailed, "disk-failed"),
    ]

    /// Names of the set flags in bit order, e.g. `["consistent", "primary-indicator"]`.
    /// Bits this version does not know appear as `"unknown-bit-N"`.
    public var names: [String] {
        var result: [String] = []
        for bit in 0..<32 {
            let value = UInt32(1) << UInt32(bit)
            guard rawValue & value != 0 else { continue }
            if let entry = MetadataFlags.known.first(where: { $0.flag.rawValue == value }) {
                result.append(entry.name)
            } else {
                result.append("unknown-bit-\(bit)")
            }
        }
        return result
    }
}
