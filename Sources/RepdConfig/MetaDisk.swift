/// Where DRBD-style metadata (generation UUIDs, bitmap, activity log) is kept.
public enum MetaDisk: Sendable, Hashable, CustomStringConvertible {
    /// At the end of the backing disk.
    case `internal`
    /// On a separate device or file. Without `index` the metadata area is sized for the backing
    /// disk ("flexible"); with `index` it is slot `index` of 128 MiB slots (DRBD's indexed form).
    case external(path: String, index: Int?)

    /// `internal`, `/path` or `/path[index]`, as written in the configuration.
    public var description: String {
        switch self {
        case .internal: "internal"
        case .external(let path, nil): path
        case .external(let path, let index?): "\(path)[\(index)]"
        }
    }
}
