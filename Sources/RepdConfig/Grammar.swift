/// The kinds of block a statement can be in, and what each may contain. The parser uses this to
/// recover from a missing `;` or `}`; the document builder to name what is wrong.
enum BlockKind: Sendable, Hashable {
    case file
    case common
    case resource
    /// `on HOST { }`
    case host
    case volume
    case section(SectionKind)
    /// `skip { }`: ignored, braces only have to balance.
    case skipped
    /// A block under a name the builder will reject; parsed only to find its end.
    case unknown

    static let resourceSectionKeywords: Set<String> = ["net", "disk", "startup", "handlers", "options"]
    /// DRBD keywords repd does not implement, with the reason given to the user.
    static let unsupportedResourceKeywords: [String: String] = [
        "floating": "'floating' sections are not supported by repd; use 'on HOST' sections",
        "stacked-on-top-of": "stacked resources ('stacked-on-top-of') are not supported by repd",
        "ignore-on": "'ignore-on' is not supported by repd",
        "proxy": "DRBD proxy ('proxy') is not supported by repd",
        "connection": "'connection' sections are DRBD 9 syntax; repd reads DRBD 8.4 files",
        "connection-mesh": "'connection-mesh' is DRBD 9 syntax; repd reads DRBD 8.4 files",
    ]
    static let syncerMessage =
        "the 'syncer' section was removed in DRBD 8.4: put resync-rate, al-extents and the c-* options in 'disk', "
        + "verify-alg and csums-alg in 'net', cpu-mask in 'options'"

    /// The kind of block that `header` opens inside a block of this kind.
    func child(for header: String?) -> BlockKind {
        guard let header else { return .unknown }
        if header == "skip" { return .skipped }
        switch self {
        case .file:
            switch header {
            case "global": return .section(.global)
            case "common": return .common
            case "resource": return .resource
            default: return .unknown
            }
        case .common, .resource:
            if Self.resourceSectionKeywords.contains(header), let kind = SectionKind(rawValue: header) {
                return .section(kind)
            }
            if self == .resource && header == "on" { return .host }
            if self == .resource && header == "volume" { return .volume }
            return .unknown
        case .host:
            return header == "volume" ? .volume : .unknown
        case .volume, .section, .skipped, .unknown:
            return .unknown
        }
    }

    /// Whether a section starting with `header` cannot be inside this block, so this block must be
    /// missing its `}`: resources do not nest, option sections hold no sections, and an `on`
    /// section holds no `on`, `net`, `disk`, ... sections.
    func cannotContain(header: String) -> Bool {
        switch self {
        case .file, .skipped: return false
        default: break
        }
        if header == "resource" || header == "common" || header == "global" { return true }
        switch self {
        case .section, .volume: return header != "skip"
        case .host: return header == "on" || Self.resourceSectionKeywords.contains(header)
        default: return false
        }
    }

    /// The statements (options and section names) valid directly in this block.
    var keywords: Set<String> {
        switch self {
        case .file: ["global", "common", "resource", "include", "skip"]
        case .common: Self.resourceSectionKeywords.union(["protocol", "skip"])
        case .resource:
            Self.resourceSectionKeywords.union(OptionCatalog.inheritable).union(["on", "protocol", "volume", "skip"])
        case .host: Set(OptionCatalog.host.map(\.name)).union(["volume", "skip"])
        case .volume: OptionCatalog.volume
        case .section(let kind): Set(kind.specs.map(\.name))
        case .skipped, .unknown: []
        }
    }

    /// How many values the option `name` takes in this block, if it is one.
    func arity(of name: String) -> ClosedRange<Int>? {
        switch self {
        case .file: return name == "include" ? 1...1 : nil
        case .common: return name == "protocol" ? 1...1 : nil
        case .resource:
            if name == "protocol" { return 1...1 }
            return OptionCatalog.inheritable.contains(name) ? OptionCatalog.hostIndex[name]?.arity : nil
        case .host, .volume: return OptionCatalog.hostIndex[name]?.arity
        case .section(let kind): return kind.spec(name)?.arity
        case .skipped, .unknown: return nil
        }
    }
}
