/// The data generation identifiers ("UUIDs" in DRBD) kept in the superblock: they let two nodes decide
/// which side has the newer data and whether a bitmap-based resync is possible.
public struct GenerationIdentifiers: Sendable, Hashable, Codable {
    /// DRBD's `UUID_JUST_CREATED`: the current generation of freshly created metadata.
    public static let justCreated: UInt64 = 4
    /// Number of history generations stored on disk.
    public static let historyCount = 2

    /// Identifier of the data generation this disk holds.
    public var current: UInt64
    /// Generation at which the dirty bitmap started recording (0 when the bitmap is not in use).
    public var bitmap: UInt64
    /// Older generations, newest first. Always exactly two entries on disk.
    public var history: [UInt64]

    /// `history` is normalised to exactly two entries: missing ones become 0, extra ones are dropped.
    public init(current: UInt64, bitmap: UInt64 = 0, history: [UInt64] = [0, 0]) {
        self.current = current
        self.bitmap = bitmap
        self.history = GenerationIdentifiers.normalised(history)
    }

    static func normalised(_ history: [UInt64]) -> [UInt64] {
        var result = Array(history.prefix(historyCount))
        while result.count < historyCount { result.append(0) }
        return result
    }
}
