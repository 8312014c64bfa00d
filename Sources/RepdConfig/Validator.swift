import RepdCore

/// Checks what the parser cannot: every value against its option, repeated options, sections and
/// resources, and the rules that span options (a complete `on` section, distinct addresses,
/// `allow-two-primaries` only with protocol C, ...).
struct Validator {
    private var diagnostics: [ConfigDiagnostic] = []

    private mutating func report(_ location: SourceLocation, _ message: String) {
        diagnostics.append(ConfigDiagnostic(location: location, message: message))
    }

    private mutating func report(_ error: ValueError?) {
        if let error { report(error.location, error.message) }
    }

    /// Validates the documents as one configuration (one `global`, one `common`, unique resource
    /// names) and returns the problems and the merged resources.
    static func validate(_ documents: [ConfigDocument]) -> (diagnostics: [ConfigDiagnostic], resources: [MergedResource]) {
        var validator = Validator()
        var firstGlobal: SourceLocation?
        var firstCommon: SourceLocation?
        var resourceNames: [String: SourceLocation] = [:]
        for document in documents {
            for global in document.globals {
                if let firstGlobal {
                    validator.report(global.location, "duplicate global section (first at \(firstGlobal))")
                } else {
                    firstGlobal = global.location
                }
                validator.check(global)
            }
            for common in document.commons {
                if let firstCommon {
                    validator.report(common.location, "duplicate common section (first at \(firstCommon))")
                } else {
                    firstCommon = common.location
                }
                common.sections.forEach { validator.check($0) }
            }
            for resource in document.resources {
                if let first = resourceNames[resource.name] {
                    validator.report(resource.nameLocation, "duplicate resource '\(resource.name)' (first defined at \(first))")
                } else {
                    resourceNames[resource.name] = resource.nameLocation
                }
                resource.sections.forEach { validator.check($0) }
                validator.checkHostOptions(resource.hostDefaults, owner: "resource '\(resource.name)'")
                for host in resource.hosts {
                    validator.checkHostOptions(host.options, owner: "'\(host.title)'")
                }
            }
        }
        let common = documents.lazy.flatMap(\.commons).first
        let merged = documents.flatMap(\.resources).map { Resolver.merge($0, common: common) }
        merged.forEach { validator.check($0) }
        return (validator.diagnostics, merged)
    }

    // MARK: Options

    private mutating func check(_ section: OptionSection) {
        var seen: [String: SourceLocation] = [:]
        for option in section.options {
            guard let spec = section.kind.spec(option.name) else { continue }
            if let first = seen[spec.canonicalName] {
                let what = section.kind == .handlers ? "handler '\(option.name)'" : "option '\(option.name)' in \(section.kind.rawValue) section"
                report(option.location, "duplicate \(what) (first set at \(first.lineAndColumn))")
                continue
            }
            seen[spec.canonicalName] = option.location
            report(ValueParser.check(option, spec))
        }
    }

    private mutating func checkHostOptions(_ options: [RawOption], owner: String) {
        var seen: [String: SourceLocation] = [:]
        for option in options {
            guard let spec = OptionCatalog.hostIndex[option.name] else { continue }
            if let first = seen[spec.canonicalName] {
                report(option.location, "duplicate option '\(option.name)' in \(owner) (first set at \(first.lineAndColumn))")
                continue
            }
            seen[spec.canonicalName] = option.location
            report(ValueParser.check(option, spec))
        }
    }

    // MARK: Resources

    private mutating func check(_ resource: MergedResource) {
        guard !resource.name.isEmpty else { return }  // already reported; more would be noise
        checkHosts(resource)
        checkNet(resource)
        checkStartup(resource)
    }

    private mutating func checkHosts(_ resource: MergedResource) {
        let name = resource.name
        if resource.hosts.isEmpty {
            report(resource.decl.nameLocation, "resource '\(name)' has no 'on' section; add one 'on HOST { ... }' per node")
        }
        for extra in resource.hosts.dropFirst(2) {
            report(
                extra.section.location,
                "resource '\(name)' has more than two 'on' sections; repd replicates between exactly two nodes")
        }
        var hostNames: [String: MergedHost] = [:]
        var addresses: [NetworkAddress: MergedHost] = [:]
        for host in resource.hosts {
            for word in host.section.names {
                if let first = hostNames[word.text] {
                    report(word.location, "host '\(word.text)' already has an 'on' section in resource '\(name)' (at \(first.section.location.lineAndColumn))")
                } else {
                    hostNames[word.text] = host
                }
            }
            checkCompleteness(host, resource: name)
            if let option = host.options["address"], let address = ValueParser.address(option).value {
                if let first = addresses[address] {
                    report(option.location, "'\(host.title)' uses the same address as '\(first.title)' (\(address)); each node needs its own address")
                } else {
                    addresses[address] = host
                }
                if let nbdOption = host.options["nbd-address"], ValueParser.address(nbdOption).value == address {
                    report(nbdOption.location, "nbd-address \(address) is the replication address of '\(host.title)'; use another port")
                }
                let nbdTLS = host.options["nbd-tls"]?.values.first.flatMap { NBDTLSMode(rawValue: $0.text) } ?? .off
                if let nbdOption = host.options["nbd-address"], let nbd = ValueParser.address(nbdOption).value, !nbd.isLoopback,
                   nbdTLS != .require, host.options["nbd-insecure"].flatMap({ ValueParser.flag($0).value }) != true {
                    report(nbdOption.location, "nbd-address \(nbd) can be reached from other machines, and NBD without TLS has no "
                        + "authentication or encryption: whoever reaches the port reads and writes the replicated disk of '\(host.title)'. "
                        + "Bind it to 127.0.0.1 or [::1] (the unix socket in the run dir serves local clients), "
                        + "require TLS with `nbd-tls require;` (and `nbd-tls-ca` to admit only clients with a certificate), "
                        + "or accept the risk with `nbd-insecure yes;` in this on section, on a network only trusted hosts reach")
                }
                if nbdTLS != .off, let option = host.options["nbd-tls"] {
                    let missing = [("nbd-tls-certificate", "tls-certificate"), ("nbd-tls-privkey", "tls-privkey")].filter { own, net in
                        host.options[own] == nil && resource.option(.net, net) == nil
                    }
                    if !missing.isEmpty {
                        report(option.location, "nbd-tls \(nbdTLS.rawValue) in '\(host.title)' needs a certificate and its key: set "
                            + ValueParser.list(missing.map { "'\($0.0)'" }, conjunction: "and")
                            + " (or tls-certificate and tls-privkey in the net section, which NBD uses too)")
                    }
                }
                if let fenceOption = host.options["fence-address"], let fence = ValueParser.address(fenceOption).value {
                    if fence == address {
                        report(fenceOption.location, "fence-address \(fence) is the replication address of '\(host.title)'; the fencing path must be another (ideally another network)")
                    }
                    if let nbdOption = host.options["nbd-address"], ValueParser.address(nbdOption).value == fence {
                        report(fenceOption.location, "fence-address \(fence) is also the nbd-address of '\(host.title)'; use another port")
                    }
                }
            }
        }
        let nodeIDs = resource.hosts.prefix(2).map { host in
            host.options["node-id"].map { ($0, Int($0.values.first?.text ?? "")) }
        }
        if nodeIDs.count == 2 {
            switch (nodeIDs[0], nodeIDs[1]) {
            case (let a?, let b?) where a.1 != nil && a.1 == b.1:
                report(b.0.location, "node-id \(b.1!) is used by both 'on' sections of resource '\(name)'")
            case (let a?, nil):
                report(a.0.location, "node-id must be set in both 'on' sections of resource '\(name)' or in neither")
            case (nil, let b?):
                report(b.0.location, "node-id must be set in both 'on' sections of resource '\(name)' or in neither")
            default:
                break
            }
        }
    }

    /// An `on` section needs `device`, `disk`, `address` and `meta-disk`, its own or inherited;
    /// a diskless node (`disk none`) needs no `meta-disk`.
    private mutating func checkCompleteness(_ host: MergedHost, resource name: String) {
        let diskless = host.options["disk"]?.values.first?.text == "none"
        let missing = ["device", "disk", "address", "meta-disk"].filter { key in
            host.options[key] == nil && !(key == "meta-disk" && diskless)
        }
        guard !missing.isEmpty else { return }
        report(
            host.section.location,
            "'\(host.title)' in resource '\(name)' has no "
                + ValueParser.list(missing.map { "'\($0)'" }, conjunction: "and")
                + "; set \(missing.count == 1 ? "it" : "them") in the section or in the resource body")
    }

    private mutating func checkNet(_ resource: MergedResource) {
        let net = Resolver.netOptions(resource)
        let name = resource.name
        if net.allowTwoPrimaries, net.protocol != .C, let option = resource.option(.net, "allow-two-primaries") {
            let scope = resource.scope(.net, ["allow-two-primaries", "protocol"])
            report(option.location, "allow-two-primaries requires protocol C (\(scope) uses protocol \(net.protocol.rawValue))")
        }
        if net.tls, let option = resource.option(.net, "tls") {
            let missing = ["tls-certificate", "tls-privkey", "tls-ca"].filter { resource.option(.net, $0) == nil }
            if !missing.isEmpty {
                report(option.location, "tls yes needs " + ValueParser.list(missing.map { "'\($0)'" }, conjunction: "and")
                    + " in \(resource.scope(.net, ["tls"])): each node shows its certificate and checks the peer's against the CA")
            }
        }
        let cram = resource.option(.net, "cram-hmac-alg")
        let secret = resource.option(.net, "shared-secret")
        if let cram, secret == nil {
            report(cram.location, "cram-hmac-alg is set without a shared-secret in \(resource.scope(.net, ["cram-hmac-alg"]))")
        }
        if secret == nil, let fence = resource.hosts.compactMap({ $0.options["fence-address"] }).first {
            report(
                fence.location,
                "fence-address needs a shared-secret (and cram-hmac-alg) in \(resource.scope(.net, ["shared-secret"])): "
                    + "the fencing path outdates a node's disk, and only a peer that knows the secret may ask for that")
        }
        if let secret, cram == nil {
            report(
                secret.location,
                "shared-secret has no effect without cram-hmac-alg in \(resource.scope(.net, ["shared-secret"])); "
                    + "add 'cram-hmac-alg sha256;' to authenticate the peer")
        }
        // A policy whose point is to run a handler needs that handler (DRBD's example configuration
        // says the same of call-pri-lost-after-sb).
        let handlerPolicies: [(option: String, handler: String, inUse: Bool, purpose: String)] = [
            ("after-sb-1pri", "pri-lost-after-sb", net.afterSB1Pri == .callPriLostAfterSB,
             "it runs on a Primary whose changes a split brain discards and that cannot become Secondary"),
            ("after-sb-2pri", "pri-lost-after-sb", net.afterSB2Pri == .callPriLostAfterSB,
             "it runs on a Primary whose changes a split brain discards and that cannot become Secondary"),
            ("rr-conflict", "pri-lost", net.rrConflict == .callPriLost,
             "it runs on a Primary that a resync would overwrite"),
        ]
        for policy in handlerPolicies where policy.inUse && resource.option(.handlers, policy.handler) == nil {
            guard let option = resource.option(.net, policy.option), let value = option.values.first else { continue }
            report(
                value.location,
                "\(policy.option) \(value.text) needs a \(policy.handler) handler, and resource '\(name)' has none; "
                    + "add one to its handlers section (\(policy.purpose))")
        }
        if case .discardNode(let node) = net.afterSB0Pri, let option = resource.option(.net, "after-sb-0pri") {
            let hosts = resource.hosts.flatMap(\.names)
            if !hosts.contains(node) {
                report(
                    option.values[0].location,
                    "after-sb-0pri names '\(node)', which is not a host of resource '\(name)'"
                        + Suggestion.hint(for: node, among: hosts))
            }
        }
    }

    private mutating func checkStartup(_ resource: MergedResource) {
        guard let option = resource.option(.startup, "become-primary-on"), option.values.count <= 2 else { return }
        let hosts = resource.hosts.flatMap(\.names)
        for value in option.values where value.text != "both" && !hosts.contains(value.text) {
            report(
                value.location,
                "become-primary-on names '\(value.text)', which is not a host of resource '\(resource.name)'"
                    + Suggestion.hint(for: value.text, among: hosts + ["both"]))
        }
        if option.values.count > 1, let both = option.values.first(where: { $0.text == "both" }) {
            report(both.location, "'both' cannot be combined with host names in become-primary-on")
        }
        let twoPrimaries = option.values.count > 1 || option.values.first?.text == "both"
        if twoPrimaries && !Resolver.netOptions(resource).allowTwoPrimaries {
            report(option.location, "become-primary-on with two nodes needs allow-two-primaries in the net section")
        }
    }
}
