/// What `repd adjust` does with a changed resource file: every difference between the running
/// resource and the file, and how each one takes effect. Pure: the daemon applies the plan, the
/// CLI prints it (`--dry-run`).
public struct AdjustPlan: Sendable, Equatable {
    public enum Effect: Sendable, Equatable {
        /// Applied to the running resource at once (the engine's settings, the handlers).
        case now
        /// Used from the next connection to the peer on (the link's settings; the connection
        /// that is up keeps the old ones).
        case nextConnection
        /// Used only when the resource comes up (`startup`, `al-extents`): recorded, no effect
        /// until `repd down` and `repd up` on this node.
        case nextUp
        /// Cannot change on a running resource; the whole adjust is refused, with the way to do it.
        case refused(String)
    }

    public struct Change: Sendable, Equatable, CustomStringConvertible {
        /// `net`, `disk`, `startup`, `handlers`, `options`, or `on NODE` for a host's settings.
        public var section: String
        public var name: String
        /// The values as written, or nil where the file does not set it (the default applies).
        public var old: String?
        public var new: String?
        public var effect: Effect

        public var description: String {
            let what = "\(section) \(name): \(old ?? "(default)") -> \(new ?? "(default)")"
            switch effect {
            case .now: return "\(what): applied now"
            case .nextConnection: return "\(what): used from the next connection to the peer on"
            case .nextUp: return "\(what): takes effect at the next `repd up`"
            case .refused(let why): return "\(what): refused: \(why)"
            }
        }
    }

    public var changes: [Change]

    public var refusals: [Change] { changes.filter { if case .refused = $0.effect { true } else { false } } }
    public var isEmpty: Bool { changes.isEmpty }

    /// The net options the engine reads: applied to the running resource.
    static let netNow: Set<String> = [
        "protocol", "timeout", "ko-count", "after-sb-0pri", "after-sb-1pri", "after-sb-2pri", "rr-conflict", "csums-alg", "verify-alg",
        "allow-two-primaries",
    ]
    /// The net options the link reads when it connects.
    static let netNextConnection: Set<String> = [
        "shared-secret", "cram-hmac-alg", "ping-int", "ping-timeout", "sndbuf-size", "rcvbuf-size", "data-integrity-alg",
        "tls", "tls-certificate", "tls-privkey", "tls-ca",
    ]
    /// The disk options the engine reads.
    static let diskNow: Set<String> = [
        "resync-rate", "c-plan-ahead", "c-fill-target", "c-delay-target", "c-max-rate", "c-min-rate", "on-io-error", "fencing",
        "disk-timeout", "on-no-data-accessible",
    ]

    public init(running: ResolvedResource, file: ResolvedResource) {
        var changes: [Change] = []
        let name = running.name
        for section in ResolvedResource.sectionNames {
            let old = Self.options(running.sections[section] ?? [])
            let new = Self.options(file.sections[section] ?? [])
            for option in Set(old.keys).union(new.keys).sorted() where old[option] != new[option] {
                changes.append(Change(section: section, name: option, old: old[option], new: new[option],
                                      effect: Self.effect(section: section, option: option, resource: name)))
            }
        }
        changes += Self.hostChanges(running.local, file.local, resource: name, peer: false)
        switch (running.peer, file.peer) {
        case (let old?, let new?):
            changes += Self.hostChanges(old, new, resource: name, peer: true)
        case (nil, nil):
            break
        case (let old, let new):
            changes.append(Change(section: "on", name: "peer", old: old?.names.first, new: new?.names.first,
                                  effect: .refused("a peer cannot be added to or removed from a running resource: `repd down \(name)`, then `repd up \(name)`")))
        }
        self.changes = changes
    }

    /// Option name to its values as written (the last occurrence counts, as in the resolver).
    static func options(_ list: [ConfigOption]) -> [String: String] {
        var map: [String: String] = [:]
        for option in list { map[option.name] = option.values.joined(separator: " ") }
        return map
    }

    static func effect(section: String, option: String, resource: String) -> Effect {
        switch section {
        case "net":
            if netNow.contains(option) { return .now }
            if netNextConnection.contains(option) { return .nextConnection }
            if option == "connect-int" { return .nextUp }
            return .now  // options repd accepts and does not act on
        case "disk":
            if diskNow.contains(option) { return .now }
            if option == "size" {
                return .refused("the size of a running resource does not change through adjust: `repd down \(resource)`, then `repd up \(resource)`")
            }
            if option == "al-extents" { return .nextUp }
            return .now
        case "handlers":
            return .now
        default:
            return .nextUp  // startup, options: read when the resource comes up
        }
    }

    static func hostChanges(_ old: HostConfig, _ new: HostConfig, resource: String, peer: Bool) -> [Change] {
        let section = "on \(old.names.first ?? "?")"
        let downUp = "`repd down \(resource)`, then `repd up \(resource)` on this node"
        var changes: [Change] = []
        func compare(_ name: String, _ a: String?, _ b: String?, _ why: String) {
            if a != b { changes.append(Change(section: section, name: name, old: a, new: b, effect: .refused(why))) }
        }
        compare("names", old.names.joined(separator: " "), new.names.joined(separator: " "), "the node's names identify it to the peer: \(downUp)")
        compare("address", "\(old.address)", "\(new.address)",
                peer ? "the peer's replication address changes with \(downUp) (the link reconnects to the new address)"
                    : "this node's replication address changes with \(downUp)")
        compare("node-id", old.nodeId.map { "\($0)" }, new.nodeId.map { "\($0)" }, "node ids are exchanged at connect: \(downUp)")
        compare("fence-address", old.fenceAddress.map { "\($0)" }, new.fenceAddress.map { "\($0)" }, "the fencing path listens from `up`: \(downUp)")
        guard !peer else { return changes }
        compare("disk", old.disk, new.disk,
                "the backing disk of a running resource does not change online: \(downUp) (the peer resyncs what changed meanwhile)")
        compare("meta-disk", "\(old.metaDisk)", "\(new.metaDisk)", "the metadata stays where it was attached: \(downUp)")
        compare("device", old.device, new.device, "the block device is attached at `up`: \(downUp)")
        compare("minor", old.minor.map { "\($0)" }, new.minor.map { "\($0)" }, "the block device is attached at `up`: \(downUp)")
        compare("nbd-address", old.nbdAddress.map { "\($0)" }, new.nbdAddress.map { "\($0)" }, "the NBD listener is bound at `up`: \(downUp)")
        compare("nbd-insecure", old.nbdInsecure ? "yes" : nil, new.nbdInsecure ? "yes" : nil, "the NBD listener is bound at `up`: \(downUp)")
        compare("nbd-socket-group", old.nbdSocketGroup, new.nbdSocketGroup, "the NBD socket gets its group at `up`: \(downUp)")
        let tlsWhy = "the NBD server loads its TLS settings at `up`: \(downUp)"
        compare("nbd-tls", old.nbdTLS.rawValue, new.nbdTLS.rawValue, tlsWhy)
        compare("nbd-tls-certificate", old.nbdTLSCertificate, new.nbdTLSCertificate, tlsWhy)
        compare("nbd-tls-privkey", old.nbdTLSPrivateKey, new.nbdTLSPrivateKey, tlsWhy)
        compare("nbd-tls-ca", old.nbdTLSCA, new.nbdTLSCA, tlsWhy)
        return changes
    }
}
