import RepdCore

/// An `on` section with the resource body's `device`/`disk`/`meta-disk`/`address` filled in
/// where the section does not set them.
struct MergedHost: Sendable {
    var section: HostSection
    /// Effective options by canonical name (`flexible-meta-disk` is under `meta-disk`).
    var options: [String: RawOption]

    var title: String { section.title }
    var names: [String] { section.names.map(\.text) }
}

/// A resource with `common` merged in, before any node is chosen.
struct MergedResource: Sendable {
    var decl: ResourceDecl
    /// Effective options per section, canonical (`no-disk-flushes` is `disk-flushes no`): common's
    /// options the resource does not override, then the resource's.
    var sections: [SectionKind: [RawOption]]
    /// The (canonical) option names of each section that come from `common`.
    var inherited: [SectionKind: Set<String>]
    var hosts: [MergedHost]

    var name: String { decl.name }

    func option(_ kind: SectionKind, _ name: String) -> RawOption? {
        sections[kind]?.first { $0.name == name }
    }

    /// Where a rule about these options is broken, for messages: `common` when all of them come
    /// from there (so the message is the same for every resource, and reported once), otherwise
    /// this resource.
    func scope(_ kind: SectionKind, _ names: [String]) -> String {
        let fromCommon = inherited[kind] ?? []
        let present = names.filter { option(kind, $0) != nil }
        return !present.isEmpty && present.allSatisfy(fromCommon.contains) ? "common" : "resource '\(name)'"
    }
}

/// Merges `common` into resources, applies inheritance, and picks a node's view of a resource.
enum Resolver {
    // MARK: Merging

    static func merge(_ resource: ResourceDecl, common: CommonDecl?) -> MergedResource {
        var sections: [SectionKind: [RawOption]] = [:]
        var inheritedNames: [SectionKind: Set<String>] = [:]
        for kind in SectionKind.resourceSections {
            let own = canonical(resource.sections.first { $0.kind == kind }?.options ?? [], kind)
            let overridden = Set(own.map(\.name))
            let inherited = canonical(common?.sections.first { $0.kind == kind }?.options ?? [], kind)
                .filter { !overridden.contains($0.name) }
            sections[kind] = inherited + own
            inheritedNames[kind] = Set(inherited.map(\.name))
        }
        let defaults = firstByCanonicalName(resource.hostDefaults)
        let hosts = resource.hosts.map { host in
            var options = firstByCanonicalName(host.options)
            for (name, option) in defaults where options[name] == nil {
                options[name] = option
            }
            return MergedHost(section: host, options: options)
        }
        return MergedResource(decl: resource, sections: sections, inherited: inheritedNames, hosts: hosts)
    }

    /// Options of one section under their canonical names, the first of each name only (a repeat
    /// is an error the validator reports).
    private static func canonical(_ options: [RawOption], _ kind: SectionKind) -> [RawOption] {
        var seen = Set<String>()
        var result: [RawOption] = []
        for option in options {
            guard let spec = kind.spec(option.name) else { continue }
            var option = option
            if case .negatedFlag(let target) = spec.kind {
                option = RawOption(
                    nameWord: Word(text: target, location: option.location),
                    values: [Word(text: "no", location: option.location)])
            }
            if seen.insert(option.name).inserted { result.append(option) }
        }
        return result
    }

    private static func firstByCanonicalName(_ options: [RawOption]) -> [String: RawOption] {
        var result: [String: RawOption] = [:]
        for option in options {
            guard let spec = OptionCatalog.hostIndex[option.name] else { continue }
            if result[spec.canonicalName] == nil { result[spec.canonicalName] = option }
        }
        return result
    }

    // MARK: Choosing the node

    /// The resource as `node` sees it. Expects a resource without validation errors.
    static func resolve(_ merged: MergedResource, node: String) -> Result<ResolvedResource, ConfigError> {
        guard let localIndex = merged.hosts.firstIndex(where: { $0.names.contains(node) }) else {
            let names = merged.hosts.flatMap(\.names)
            return .failure(ConfigError(diagnostics: [ConfigDiagnostic(
                location: merged.decl.nameLocation,
                message: "resource '\(merged.name)' has no 'on' section for node '\(node)'; its hosts are "
                    + ValueParser.list(names.map { "'\($0)'" }, conjunction: "and")
                    + " (pass one of them with --node)")]))
        }
        let peer = merged.hosts.indices.first { $0 != localIndex }.map { hostConfig(merged.hosts[$0]) }
        let handlers = Dictionary(
            (merged.sections[.handlers] ?? []).map { ($0.name, $0.values.first?.text ?? "") },
            uniquingKeysWith: { first, _ in first })
        var sections: [String: [ConfigOption]] = [:]
        for kind in SectionKind.resourceSections {
            sections[kind.rawValue] = (merged.sections[kind] ?? []).map {
                ConfigOption(name: $0.name, values: $0.values.map(\.text), location: $0.location)
            }
        }
        return .success(ResolvedResource(
            name: merged.name, file: merged.decl.location.file, location: merged.decl.location,
            local: hostConfig(merged.hosts[localIndex]), peer: peer,
            net: netOptions(merged), disk: diskOptions(merged), startup: startupOptions(merged),
            handlers: handlers, sections: sections))
    }

    static func hostConfig(_ host: MergedHost) -> HostConfig {
        let device = host.options["device"].flatMap { ValueParser.device($0).value }
        let disk = host.options["disk"].flatMap { ValueParser.backingDisk($0).value } ?? "none"
        let metaDisk = host.options["meta-disk"].flatMap { option in
            ValueParser.metaDisk(option, flexible: option.name == "flexible-meta-disk").value
        }
        var config = HostConfig(
            names: host.names,
            device: device?.path ?? "",
            minor: device?.minor,
            disk: disk,
            address: host.options["address"].flatMap { ValueParser.address($0).value }
                ?? NetworkAddress(family: .ipv4, host: "0.0.0.0", port: 0),
            metaDisk: metaDisk ?? .internal,
            nodeId: host.options["node-id"].flatMap { number($0, OptionCatalog.hostIndex["node-id"]) }.map { Int($0) },
            nbdAddress: host.options["nbd-address"].flatMap { ValueParser.address($0).value },
            fenceAddress: host.options["fence-address"].flatMap { ValueParser.address($0).value },
            location: host.section.location)
        config.nbdInsecure = host.options["nbd-insecure"].flatMap { ValueParser.flag($0).value } ?? false
        config.nbdSocketGroup = host.options["nbd-socket-group"]?.values.first?.text
        config.nbdTLS = host.options["nbd-tls"]?.values.first.flatMap { NBDTLSMode(rawValue: $0.text) } ?? .off
        config.nbdTLSCertificate = host.options["nbd-tls-certificate"]?.values.first?.text
        config.nbdTLSPrivateKey = host.options["nbd-tls-privkey"]?.values.first?.text
        config.nbdTLSCA = host.options["nbd-tls-ca"]?.values.first?.text
        return config
    }

    // MARK: Typed sections

    private static func number(_ option: RawOption?, _ spec: OptionSpec?) -> Int64? {
        guard let option, let value = option.values.first, let spec, case .number(let numberSpec) = spec.kind else { return nil }
        return ValueParser.number(value, option: option.name, spec: numberSpec).value
    }

    /// Typed access to the effective options of one section; invalid values read as absent.
    private struct Reader {
        let merged: MergedResource
        let kind: SectionKind

        func option(_ name: String) -> RawOption? { merged.option(kind, name) }

        func int(_ name: String) -> Int? { number(option(name), kind.spec(name)).map { Int($0) } }

        func flag(_ name: String) -> Bool? { option(name).flatMap { ValueParser.flag($0).value } }

        func text(_ name: String) -> String? { option(name)?.values.first?.text }

        func choice(_ name: String) -> String? {
            guard let option = option(name), let value = option.values.first,
                case .choice(let choices, let caseInsensitive)? = kind.spec(name)?.kind
            else { return nil }
            return ValueParser.choice(value, option: name, choices: choices, caseInsensitive: caseInsensitive).value
        }
    }

    static func netOptions(_ merged: MergedResource) -> NetOptions {
        let net = Reader(merged: merged, kind: .net)
        var options = NetOptions()
        if let value = net.choice("protocol").flatMap(ReplicationProtocol.init(rawValue:)) { options.protocol = value }
        if let value = net.flag("allow-two-primaries") { options.allowTwoPrimaries = value }
        if let value = net.option("after-sb-0pri")?.values.first.flatMap({ ValueParser.afterSB0Pri($0).value }) {
            options.afterSB0Pri = value
        }
        if let value = net.choice("after-sb-1pri").flatMap(AfterSB1Pri.init(rawValue:)) { options.afterSB1Pri = value }
        if let value = net.choice("after-sb-2pri").flatMap(AfterSB2Pri.init(rawValue:)) { options.afterSB2Pri = value }
        if let value = net.choice("rr-conflict").flatMap(RRConflict.init(rawValue:)) { options.rrConflict = value }
        if let value = net.flag("always-asbp") { options.alwaysASBP = value }
        options.cramHMACAlg = net.text("cram-hmac-alg")
        options.sharedSecret = net.text("shared-secret")
        if let value = net.int("connect-int") { options.connectIntervalSeconds = value }
        if let value = net.int("ping-int") { options.pingIntervalSeconds = value }
        if let value = net.int("ping-timeout") { options.pingTimeoutDeciseconds = value }
        if let value = net.int("timeout") { options.timeoutDeciseconds = value }
        if let value = net.int("ko-count") { options.koCount = value }
        if let value = net.int("sndbuf-size") { options.sndbufSize = value }
        if let value = net.int("rcvbuf-size") { options.rcvbufSize = value }
        if let value = net.int("max-buffers") { options.maxBuffers = value }
        if let value = net.int("max-epoch-size") { options.maxEpochSize = value }
        options.verifyAlg = net.text("verify-alg")
        options.csumsAlg = net.text("csums-alg")
        options.dataIntegrityAlg = net.text("data-integrity-alg")
        options.tls = net.flag("tls") ?? false
        options.tlsCertificate = net.text("tls-certificate")
        options.tlsPrivateKey = net.text("tls-privkey")
        options.tlsCA = net.text("tls-ca")
        return options
    }

    static func diskOptions(_ merged: MergedResource) -> DiskOptions {
        let disk = Reader(merged: merged, kind: .disk)
        var options = DiskOptions()
        if let kib = disk.int("resync-rate") { options.resyncRateBytesPerSecond = kib * 1024 }
        if let value = disk.int("al-extents") { options.alExtents = value }
        if let value = disk.int("c-plan-ahead") { options.cPlanAheadDeciseconds = value }
        if let sectors = disk.int("c-fill-target") { options.cFillTargetBytes = sectors * 512 }
        if let value = disk.int("c-delay-target") { options.cDelayTargetDeciseconds = value }
        if let kib = disk.int("c-max-rate") { options.cMaxRateBytesPerSecond = kib * 1024 }
        if let kib = disk.int("c-min-rate") { options.cMinRateBytesPerSecond = kib * 1024 }
        if let sectors = disk.int("size"), sectors > 0 { options.sizeBytes = UInt64(sectors) * 512 }
        if let value = disk.choice("on-io-error") { options.onIOError = value }
        if let value = disk.choice("fencing") ?? Reader(merged: merged, kind: .net).choice("fencing") { options.fencing = value }
        if let value = disk.int("disk-timeout") { options.diskTimeoutDeciseconds = value }
        if let value = Reader(merged: merged, kind: .options).choice("on-no-data-accessible") { options.onNoDataAccessible = value }
        return options
    }

    static func startupOptions(_ merged: MergedResource) -> StartupOptions {
        let startup = Reader(merged: merged, kind: .startup)
        var options = StartupOptions()
        options.becomePrimaryOn = startup.option("become-primary-on")?.values.map(\.text) ?? []
        if let value = startup.int("wfc-timeout") { options.wfcTimeoutSeconds = value }
        if let value = startup.int("degr-wfc-timeout") { options.degrWfcTimeoutSeconds = value }
        if let value = startup.int("outdated-wfc-timeout") { options.outdatedWfcTimeoutSeconds = value }
        if let value = startup.flag("wait-after-sb") { options.waitAfterSB = value }
        return options
    }
}
