import RepdCore

/// The option sections DRBD 8.4 knows, plus `global`.
enum SectionKind: String, Sendable, Hashable, CaseIterable {
    case global, net, disk, startup, handlers, options

    /// The sections a resource (and `common`) may have, in the order they are printed.
    static let resourceSections: [SectionKind] = [.net, .disk, .startup, .handlers, .options]

    /// `unknown net option 'x'`, `unknown handler 'x'`.
    var unknownOptionNoun: String { self == .handlers ? "handler" : "\(rawValue) option" }

    var specs: [OptionSpec] {
        switch self {
        case .global: OptionCatalog.global
        case .net: OptionCatalog.net
        case .disk: OptionCatalog.disk
        case .startup: OptionCatalog.startup
        case .handlers: OptionCatalog.handlers
        case .options: OptionCatalog.options
        }
    }

    func spec(_ name: String) -> OptionSpec? { OptionCatalog.index[self]?[name] }
}

/// The unit a number is written in when it has no suffix, and which suffixes it accepts.
///
/// Sizes and rates take `K`, `M`, `G` (binary, either case) and `s` (512-byte sectors), like
/// DRBD. Plain counts take `K`, `M`, `G` as multipliers. Times take plain numbers only: `6s`
/// would mean six *sectors* to DRBD, which is never what was meant.
enum NumberUnit: Sendable, Hashable {
    case count
    case seconds
    case deciseconds
    case bytes
    case kibibytes
    case sectors

    /// Bytes in one unit, for the size units.
    var bytesPerUnit: Int64? {
        switch self {
        case .bytes: 1
        case .kibibytes: 1024
        case .sectors: 512
        case .count, .seconds, .deciseconds: nil
        }
    }
}

/// A numeric option: its range in the default unit, and how to name that unit in messages.
struct NumberSpec: Sendable, Hashable {
    var range: ClosedRange<Int64>
    var unit: NumberUnit
    /// E.g. `KiB/s`, `tenths of a second`; empty for plain counts.
    var label: String

    init(_ range: ClosedRange<Int64>, _ unit: NumberUnit, label: String? = nil) {
        self.range = range
        self.unit = unit
        self.label = label ?? {
            switch unit {
            case .count: ""
            case .seconds: "seconds"
            case .deciseconds: "tenths of a second"
            case .bytes: "bytes"
            case .kibibytes: "KiB"
            case .sectors: "sectors"
            }
        }()
    }
}

/// What kind of value an option takes.
enum ValueKind: Sendable, Hashable {
    /// `name;`, `name yes;` or `name no;`.
    case flag
    /// `no-disk-flushes;`: the same as `disk-flushes no;`.
    case negatedFlag(of: String)
    case number(NumberSpec)
    case choice([String], caseInsensitive: Bool = false)
    /// `after-sb-0pri`: a fixed policy or `discard-node-NODENAME`.
    case afterSB0Pri
    /// A digest name from a fixed list (repd implements only these).
    case algorithm([String])
    /// Free text, one word or string.
    case text(maxLength: Int?)
    /// A handler's shell command, one (usually quoted) string.
    case command
    /// `become-primary-on`: host names or `both`.
    case hostList
    /// `cpu-mask`: hexadecimal, optionally with commas.
    case cpuMask
    // Values of `on` sections (and their defaults in the resource body).
    case device
    case backingDisk
    case address
    case metaDisk(flexible: Bool)
}

/// One option: its name, the kind of value, and how many words the value may have.
struct OptionSpec: Sendable, Hashable {
    var name: String
    var kind: ValueKind

    init(_ name: String, _ kind: ValueKind) {
        self.name = name
        self.kind = kind
    }

    /// How many value words are valid. For the `on` values this is the most the parser expects
    /// on one line before it decides a `;` is missing; their own parsers say what is wrong.
    var arity: ClosedRange<Int> {
        switch kind {
        case .flag: 0...1
        case .negatedFlag: 0...0
        case .hostList: 1...2
        case .device: 1...3
        case .address: 1...2
        case .metaDisk(flexible: false): 1...4
        default: 1...1
        }
    }

    /// The name duplicates and overrides are matched by: `no-disk-flushes` is `disk-flushes`,
    /// `flexible-meta-disk` is `meta-disk`.
    var canonicalName: String {
        switch kind {
        case .negatedFlag(let target): target
        case .metaDisk: "meta-disk"
        default: name
        }
    }
}

/// Every option DRBD 8.4 accepts in each section, with its range and default unit
/// (from `drbd_limits.h`), and the values of `on` sections including repd's `nbd-address`.
enum OptionCatalog {
    static let digests = ["crc32c", "sha1", "sha256"]
    static let authDigests = ["sha1", "sha256"]
    static let sharedSecretMaxLength = 64
    static let maxMinor: Int64 = (1 << 20) - 1

    static let global: [OptionSpec] = [
        OptionSpec("usage-count", .choice(["yes", "no", "ask"])),
        OptionSpec("minor-count", .number(NumberSpec(1...maxMinor, .count))),
        OptionSpec("dialog-refresh", .number(NumberSpec(0...600, .seconds))),
        OptionSpec("disable-ip-verification", .flag),
        OptionSpec("udev-always-use-vnr", .flag),
    ]

    static let net: [OptionSpec] = [
        OptionSpec("protocol", .choice(ReplicationProtocol.allCases.map(\.rawValue), caseInsensitive: true)),
        OptionSpec("timeout", .number(NumberSpec(1...600, .deciseconds))),
        OptionSpec("max-epoch-size", .number(NumberSpec(1...20000, .count))),
        OptionSpec("max-buffers", .number(NumberSpec(32...131072, .count))),
        OptionSpec("unplug-watermark", .number(NumberSpec(1...131072, .count))),
        OptionSpec("connect-int", .number(NumberSpec(1...120, .seconds))),
        OptionSpec("ping-int", .number(NumberSpec(1...120, .seconds))),
        OptionSpec("sndbuf-size", .number(NumberSpec(0...(10 << 20), .bytes))),
        OptionSpec("rcvbuf-size", .number(NumberSpec(0...(10 << 20), .bytes))),
        OptionSpec("ko-count", .number(NumberSpec(0...200, .count))),
        OptionSpec("allow-two-primaries", .flag),
        OptionSpec("cram-hmac-alg", .algorithm(authDigests)),
        OptionSpec("shared-secret", .text(maxLength: sharedSecretMaxLength)),
        OptionSpec("after-sb-0pri", .afterSB0Pri),
        OptionSpec("after-sb-1pri", .choice(AfterSB1Pri.allCases.map(\.rawValue))),
        OptionSpec("after-sb-2pri", .choice(AfterSB2Pri.allCases.map(\.rawValue))),
        OptionSpec("always-asbp", .flag),
        OptionSpec("rr-conflict", .choice(RRConflict.allCases.map(\.rawValue))),
        OptionSpec("ping-timeout", .number(NumberSpec(1...300, .deciseconds))),
        OptionSpec("data-integrity-alg", .algorithm(digests)),
        // TLS on the replication link (DRBD 9.2's names, plus tls-ca: the PEM file of the CA both
        // nodes' certificates are signed by; repd checks the peer's against it and its node name).
        OptionSpec("tls", .flag),
        OptionSpec("tls-certificate", .text(maxLength: 4096)),
        OptionSpec("tls-privkey", .text(maxLength: 4096)),
        OptionSpec("tls-ca", .text(maxLength: 4096)),
        OptionSpec("tcp-cork", .flag),
        OptionSpec("no-tcp-cork", .negatedFlag(of: "tcp-cork")),
        OptionSpec("on-congestion", .choice(["block", "pull-ahead", "disconnect"])),
        OptionSpec("congestion-fill", .number(NumberSpec(0...(10 << 21), .sectors))),
        OptionSpec("congestion-extents", .number(NumberSpec(67...0xfffe, .count))),
        OptionSpec("csums-alg", .algorithm(digests)),
        OptionSpec("csums-after-crash-only", .flag),
        OptionSpec("verify-alg", .algorithm(digests)),
        OptionSpec("use-rle", .flag),
        OptionSpec("socket-check-timeout", .number(NumberSpec(0...300, .deciseconds))),
        OptionSpec("discard-my-data", .flag),
        // DRBD 9 moved fencing from `disk` to `net`; both places are accepted.
        OptionSpec("fencing", .choice(["dont-care", "resource-only", "resource-and-stonith"])),
    ]

    static let disk: [OptionSpec] = [
        OptionSpec("on-io-error", .choice(["pass_on", "call-local-io-error", "detach"])),
        OptionSpec("fencing", .choice(["dont-care", "resource-only", "resource-and-stonith"])),
        OptionSpec("disk-barrier", .flag),
        OptionSpec("disk-flushes", .flag),
        OptionSpec("disk-drain", .flag),
        OptionSpec("md-flushes", .flag),
        OptionSpec("no-disk-barrier", .negatedFlag(of: "disk-barrier")),
        OptionSpec("no-disk-flushes", .negatedFlag(of: "disk-flushes")),
        OptionSpec("no-disk-drain", .negatedFlag(of: "disk-drain")),
        OptionSpec("no-md-flushes", .negatedFlag(of: "md-flushes")),
        OptionSpec("use-bmbv", .flag),
        OptionSpec("resync-rate", .number(NumberSpec(1...(4 << 20), .kibibytes, label: "KiB/s"))),
        OptionSpec("resync-after", .text(maxLength: nil)),
        OptionSpec("al-extents", .number(NumberSpec(67...0xfffe, .count))),
        OptionSpec("al-updates", .flag),
        OptionSpec("discard-zeroes-if-aligned", .flag),
        OptionSpec("disable-write-same", .flag),
        OptionSpec("c-plan-ahead", .number(NumberSpec(0...300, .deciseconds))),
        OptionSpec("c-delay-target", .number(NumberSpec(1...100, .deciseconds))),
        OptionSpec("c-fill-target", .number(NumberSpec(0...(1 << 20), .sectors))),
        OptionSpec("c-max-rate", .number(NumberSpec(250...(4 << 20), .kibibytes, label: "KiB/s"))),
        OptionSpec("c-min-rate", .number(NumberSpec(0...(4 << 20), .kibibytes, label: "KiB/s"))),
        OptionSpec("disk-timeout", .number(NumberSpec(0...6000, .deciseconds))),
        OptionSpec("read-balancing", .choice([
            "prefer-local", "prefer-remote", "round-robin", "least-pending", "when-congested-remote",
            "32K-striping", "64K-striping", "128K-striping", "256K-striping", "512K-striping", "1M-striping",
        ])),
        OptionSpec("rs-discard-granularity", .number(NumberSpec(0...(1 << 20), .bytes))),
        OptionSpec("size", .number(NumberSpec(0...(2 << 40), .sectors))),
        OptionSpec("max-bio-bvecs", .number(NumberSpec(0...128, .count))),
    ]

    static let startup: [OptionSpec] = [
        OptionSpec("wfc-timeout", .number(NumberSpec(0...300000, .seconds))),
        OptionSpec("degr-wfc-timeout", .number(NumberSpec(0...300000, .seconds))),
        OptionSpec("outdated-wfc-timeout", .number(NumberSpec(0...300000, .seconds))),
        OptionSpec("wait-after-sb", .flag),
        OptionSpec("stacked-timeouts", .flag),
        OptionSpec("become-primary-on", .hostList),
    ]

    static let options: [OptionSpec] = [
        OptionSpec("cpu-mask", .cpuMask),
        OptionSpec("on-no-data-accessible", .choice(["io-error", "suspend-io"])),
    ]

    static let handlers: [OptionSpec] = [
        "pri-on-incon-degr", "pri-lost-after-sb", "pri-lost", "fence-peer", "unfence-peer", "outdate-peer",
        "local-io-error", "initial-split-brain", "split-brain", "before-resync-target", "after-resync-target",
        "before-resync-source", "out-of-sync",
    ].map { OptionSpec($0, .command) }

    /// The statements of an `on` section.
    static let host: [OptionSpec] = [
        OptionSpec("device", .device),
        OptionSpec("disk", .backingDisk),
        OptionSpec("address", .address),
        OptionSpec("meta-disk", .metaDisk(flexible: false)),
        OptionSpec("flexible-meta-disk", .metaDisk(flexible: true)),
        OptionSpec("node-id", .number(NumberSpec(0...31, .count))),
        OptionSpec("nbd-address", .address),
        OptionSpec("fence-address", .address),
        // repd: an nbd-address other machines can reach without TLS, accepted knowingly.
        OptionSpec("nbd-insecure", .flag),
        // repd: TLS on NBD (NBD_OPT_STARTTLS). The certificate and key default to the net section's
        // tls-certificate and tls-privkey; with nbd-tls-ca, clients must show a certificate it signed.
        OptionSpec("nbd-tls", .choice(NBDTLSMode.allCases.map(\.rawValue))),
        OptionSpec("nbd-tls-certificate", .text(maxLength: 4096)),
        OptionSpec("nbd-tls-privkey", .text(maxLength: 4096)),
        OptionSpec("nbd-tls-ca", .text(maxLength: 4096)),
        // repd: the group that may use the NBD unix socket (mode 0660); root only without it.
        OptionSpec("nbd-socket-group", .text(maxLength: 64)),
    ]

    /// What a resource body may set for all its `on` sections (DRBD 8.4 inheritance).
    static let inheritable: Set<String> = [
        "device", "disk", "address", "meta-disk", "flexible-meta-disk", "nbd-tls", "nbd-tls-certificate", "nbd-tls-privkey", "nbd-tls-ca",
    ]

    /// What a `volume` section may hold.
    static let volume: Set<String> = ["device", "disk", "meta-disk", "flexible-meta-disk"]

    static let hostIndex: [String: OptionSpec] = Dictionary(uniqueKeysWithValues: host.map { ($0.name, $0) })

    static let index: [SectionKind: [String: OptionSpec]] = Dictionary(
        uniqueKeysWithValues: SectionKind.allCases.map { kind in
            (kind, Dictionary(uniqueKeysWithValues: kind.specs.map { ($0.name, $0) }))
        })

    /// Every section an option name is valid in, to point a misplaced option to the right one.
    static func sections(containing name: String) -> [SectionKind] {
        SectionKind.allCases.filter { $0.spec(name) != nil }
    }
}
