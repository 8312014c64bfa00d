/// One option as it takes effect, for printing and for options the typed structs do not carry.
///
/// Names are canonical: `no-disk-flushes;` becomes `disk-flushes no`, and a `protocol` written in
/// the resource or common body appears in the `net` section. Values are the words as written
/// (quotes removed), so `resync-rate 10M` keeps `10M`.
///
/// Equality and hashing ignore `location`.
public struct ConfigOption: Sendable, Hashable {
    public var name: String
    /// The values; empty for a flag written without `yes`/`no`.
    public var values: [String]
    /// Where the option's name is.
    public var location: SourceLocation

    public init(name: String, values: [String], location: SourceLocation) {
        self.name = name
        self.values = values
        self.location = location
    }

    public static func == (lhs: ConfigOption, rhs: ConfigOption) -> Bool {
        lhs.name == rhs.name && lhs.values == rhs.values
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(values)
    }
}
