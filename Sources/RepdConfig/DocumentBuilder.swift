/// Reads the statement tree of one file as DRBD configuration: which statements are sections,
/// which are options, and whether each name is known where it is written. Values are checked
/// later, by the validator.
struct DocumentBuilder {
    private var document: ConfigDocument
    private var diagnostics: [ConfigDiagnostic] = []

    private init(file: String) {
        document = ConfigDocument(file: file)
    }

    static func build(_ statements: [Statement], file: String) -> (document: ConfigDocument, diagnostics: [ConfigDiagnostic]) {
        var builder = DocumentBuilder(file: file)
        for statement in statements { builder.topLevel(statement) }
        return (builder.document, builder.diagnostics)
    }

    private mutating func report(_ location: SourceLocation, _ message: String) {
        diagnostics.append(ConfigDiagnostic(location: location, message: message))
    }

    /// The statement's keyword, or a report that a quoted string stands where a keyword belongs.
    private mutating func keyword(of statement: Statement) -> String? {
        if let keyword = statement.head.keyword { return keyword }
        report(statement.location, "expected a keyword, found the string \(statement.head.spelling)")
        return nil
    }

    private mutating func rejectArguments(of statement: Statement) {
        if let extra = statement.arguments.first {
            report(extra.location, "unexpected '\(extra.spelling)' after '\(statement.head.spelling)'")
        }
    }

    // MARK: Top level

    private mutating func topLevel(_ statement: Statement) {
        guard let keyword = keyword(of: statement) else { return }
        switch keyword {
        case "global":
            guard let block = requireBlock(statement) else { return }
            rejectArguments(of: statement)
            document.globals.append(optionSection(.global, statement, block))
        case "common":
            guard let block = requireBlock(statement) else { return }
            rejectArguments(of: statement)
            document.commons.append(common(statement, block))
        case "resource":
            guard let block = requireBlock(statement, usage: "resource NAME { ... }") else { return }
            resource(statement, block)
        case "include":
            if statement.block != nil {
                report(statement.location, "'include' takes a file name or pattern, not a block")
            } else if statement.arguments.count != 1 {
                report(statement.location, "'include' takes exactly one file name or pattern: include \"drbd.d/*.res\";")
            } else {
                document.includes.append(IncludeDecl(pattern: statement.words[1].text, location: statement.words[1].location))
            }
        case "skip":
            _ = requireBlock(statement)
        default:
            if BlockKind.resource.keywords.contains(keyword) {
                report(statement.location, "'\(keyword)' is only allowed inside a resource section")
            } else {
                report(
                    statement.location,
                    "unknown keyword '\(keyword)'; expected 'global', 'common', 'resource' or 'include'"
                        + Suggestion.hint(for: keyword, among: BlockKind.file.keywords))
            }
        }
    }

    private mutating func requireBlock(_ statement: Statement, usage: String? = nil) -> Statement.Block? {
        if let block = statement.block { return block }
        let form = usage ?? "\(statement.head.spelling) { ... }"
        report(statement.location, "'\(statement.head.spelling)' must be followed by a block: \(form)")
        return nil
    }

    // MARK: Sections

    private mutating func optionSection(_ kind: SectionKind, _ statement: Statement, _ block: Statement.Block) -> OptionSection {
        var section = OptionSection(kind: kind, location: statement.location, options: [])
        for inner in block.statements {
            guard let name = keyword(of: inner) else { continue }
            if inner.block != nil {
                if name != "skip" {
                    report(inner.location, "unexpected block '\(inner.spelling) { ... }' in the \(kind.rawValue) section")
                }
                continue
            }
            guard kind.spec(name) != nil else {
                report(inner.location, unknownOptionMessage(name, in: kind))
                continue
            }
            section.options.append(RawOption(nameWord: inner.head, values: Array(inner.arguments)))
        }
        return section
    }

    /// Old DRBD 8.3 names, pointed at their 8.4 successors.
    private static let renamedOptions: [String: String] = ["rate": "resync-rate", "after": "resync-after"]

    private func unknownOptionMessage(_ name: String, in kind: SectionKind) -> String {
        let message = "unknown \(kind.unknownOptionNoun) '\(name)'"
        if let elsewhere = OptionCatalog.sections(containing: name).first(where: { $0 != kind }) {
            return message + "; it belongs in the '\(elsewhere.rawValue)' section"
        }
        if OptionCatalog.hostIndex[name] != nil {
            return message + "; it belongs in an 'on' section"
        }
        if let renamed = Self.renamedOptions[name], let section = OptionCatalog.sections(containing: renamed).first {
            return message + "; did you mean '\(renamed)'?"
                + (section == kind ? "" : " (it belongs in the '\(section.rawValue)' section)")
        }
        return message + Suggestion.hint(for: name, among: kind.specs.map(\.name))
    }

    /// Adds `section` unless one of its kind is there already, which is reported.
    private mutating func add(_ section: OptionSection, to sections: inout [OptionSection], owner: String) {
        if let first = sections.first(where: { $0.kind == section.kind }) {
            report(
                section.location,
                "duplicate \(section.kind.rawValue) section in \(owner) (first at \(first.location.lineAndColumn))")
        }
        sections.append(section)
    }

    /// A `protocol` written directly in a resource or `common` (DRBD 8.3 style) joins the `net`
    /// section, where DRBD 8.4 keeps it.
    private func addLegacyNetOptions(_ options: [RawOption], to sections: inout [OptionSection]) {
        guard let first = options.first else { return }
        if let index = sections.firstIndex(where: { $0.kind == .net }) {
            sections[index].options += options
        } else {
            sections.append(OptionSection(kind: .net, location: first.location, options: options))
        }
    }

    // MARK: common

    private mutating func common(_ statement: Statement, _ block: Statement.Block) -> CommonDecl {
        var common = CommonDecl(location: statement.location)
        var legacyNet: [RawOption] = []
        for inner in block.statements {
            guard let name = keyword(of: inner) else { continue }
            if let innerBlock = inner.block {
                if case .section(let kind) = innerBlock.kind {
                    rejectArguments(of: inner)
                    add(optionSection(kind, inner, innerBlock), to: &common.sections, owner: "common")
                } else if name == "skip" {
                    continue
                } else if name == "syncer" {
                    report(inner.location, BlockKind.syncerMessage)
                } else if name == "on" || name == "volume" {
                    report(inner.location, "'\(name)' sections belong in a resource, not in common")
                } else {
                    report(
                        inner.location,
                        "unknown section '\(name)' in common"
                            + Suggestion.hint(for: name, among: BlockKind.resourceSectionKeywords))
                }
            } else if name == "protocol" {
                legacyNet.append(RawOption(nameWord: inner.head, values: Array(inner.arguments)))
            } else if BlockKind.resourceSectionKeywords.contains(name) {
                report(inner.location, "'\(name)' must be followed by a block: \(name) { ... }")
            } else if OptionCatalog.hostIndex[name] != nil {
                report(inner.location, "'\(name)' cannot be set in common; set it in a resource or its 'on' sections")
            } else {
                report(inner.location, misplacedOptionMessage(name, owner: "common", candidates: ["protocol"]))
            }
        }
        addLegacyNetOptions(legacyNet, to: &common.sections)
        return common
    }

    /// For an option written directly in a resource or common body.
    private func misplacedOptionMessage(_ name: String, owner: String, candidates: Set<String>) -> String {
        if let section = OptionCatalog.sections(containing: name).first(where: { $0 != .global }) {
            return "'\(name)' must be inside the '\(section.rawValue)' section"
        }
        if let message = BlockKind.unsupportedResourceKeywords[name] { return message }
        return "unknown option '\(name)' in \(owner)" + Suggestion.hint(for: name, among: candidates)
    }

    // MARK: resource

    /// Tracks the `volume` sections of one resource: repd replicates one volume.
    private struct VolumeTracker {
        var first: (number: String, location: SourceLocation)?
    }

    private mutating func resource(_ statement: Statement, _ block: Statement.Block) {
        let arguments = Array(statement.arguments)
        let nameWord = arguments.first ?? Word(text: "", location: statement.location)
        if arguments.isEmpty {
            report(statement.location, "'resource' needs a name: resource NAME { ... }")
        } else if arguments.count > 1 {
            report(arguments[1].location, "unexpected '\(arguments[1].spelling)' after the resource name")
        } else if nameWord.text.isEmpty || nameWord.text.contains(where: { $0 == "/" || $0.isWhitespace }) {
            report(nameWord.location, "invalid resource name \(nameWord.spelling)")
        }
        var resource = ResourceDecl(name: nameWord.text, nameLocation: nameWord.location, location: statement.location)
        let owner = "resource '\(resource.name)'"
        var legacyNet: [RawOption] = []
        var volumes = VolumeTracker()
        for inner in block.statements {
            guard let name = keyword(of: inner) else { continue }
            if let innerBlock = inner.block {
                switch innerBlock.kind {
                case .section(let kind):
                    rejectArguments(of: inner)
                    add(optionSection(kind, inner, innerBlock), to: &resource.sections, owner: owner)
                case .host:
                    resource.hosts.append(host(inner, innerBlock, volumes: &volumes))
                case .volume:
                    volume(inner, innerBlock, scope: owner, volumes: &volumes, into: &resource.hostDefaults)
                case .skipped:
                    continue
                default:
                    if name == "syncer" {
                        report(inner.location, BlockKind.syncerMessage)
                    } else if let message = BlockKind.unsupportedResourceKeywords[name] {
                        report(inner.location, message)
                    } else if BlockKind.resource.keywords.contains(name) {
                        report(inner.location, "'\(name)' is an option and takes a value, not a block")
                    } else {
                        report(
                            inner.location,
                            "unknown section '\(name)' in \(owner)"
                                + Suggestion.hint(for: name, among: BlockKind.resourceSectionKeywords.union(["on", "volume"])))
                    }
                }
            } else if OptionCatalog.inheritable.contains(name) {
                resource.hostDefaults.append(RawOption(nameWord: inner.head, values: Array(inner.arguments)))
            } else if name == "protocol" {
                legacyNet.append(RawOption(nameWord: inner.head, values: Array(inner.arguments)))
            } else if OptionCatalog.hostIndex[name] != nil {
                report(inner.location, "'\(name)' belongs in an 'on' section")
            } else if name == "on" {
                report(inner.location, "'on' must be followed by host names and a block: on HOST { ... }")
            } else if BlockKind.resourceSectionKeywords.contains(name) || name == "volume" {
                report(inner.location, "'\(name)' must be followed by a block: \(name) { ... }")
            } else {
                report(
                    inner.location,
                    misplacedOptionMessage(name, owner: owner, candidates: OptionCatalog.inheritable.union(["protocol"])))
            }
        }
        addLegacyNetOptions(legacyNet, to: &resource.sections)
        document.resources.append(resource)
    }

    private mutating func host(_ statement: Statement, _ block: Statement.Block, volumes: inout VolumeTracker) -> HostSection {
        var host = HostSection(names: Array(statement.arguments), location: statement.location, options: [])
        if host.names.isEmpty {
            report(statement.location, "'on' needs at least one host name: on HOST { ... }")
        }
        for inner in block.statements {
            guard let name = keyword(of: inner) else { continue }
            if let innerBlock = inner.block {
                switch innerBlock.kind {
                case .volume:
                    volume(inner, innerBlock, scope: "'\(host.title)'", volumes: &volumes, into: &host.options)
                case .skipped:
                    continue
                default:
                    if BlockKind.resourceSectionKeywords.contains(name) {
                        report(
                            inner.location,
                            "a \(name) section cannot be inside '\(host.title)'; put it in the resource body")
                    } else {
                        report(inner.location, "unexpected block '\(inner.spelling) { ... }' in '\(host.title)'")
                    }
                }
            } else if OptionCatalog.hostIndex[name] != nil {
                host.options.append(RawOption(nameWord: inner.head, values: Array(inner.arguments)))
            } else if let section = OptionCatalog.sections(containing: name).first(where: { $0 != .global }) {
                report(inner.location, "'\(name)' cannot be set in an 'on' section; it belongs in the '\(section.rawValue)' section of the resource")
            } else {
                report(
                    inner.location,
                    "unknown option '\(name)' in '\(host.title)'"
                        + Suggestion.hint(for: name, among: OptionCatalog.host.map(\.name)))
            }
        }
        return host
    }

    /// A `volume N { }`: its statements count as if written in the enclosing section. repd
    /// replicates a single volume, so every `volume` of a resource must have the same number; the
    /// statements of a volume with another number are reported and left out.
    private mutating func volume(
        _ statement: Statement, _ block: Statement.Block, scope: String, volumes: inout VolumeTracker,
        into options: inout [RawOption]
    ) {
        let arguments = Array(statement.arguments)
        var isSecondVolume = false
        if arguments.count != 1 {
            report(statement.location, "'volume' needs a number: volume N { ... }")
        } else if let number = Int(arguments[0].text), (0...65535).contains(number), !arguments[0].isQuoted {
            if let first = volumes.first, first.number != arguments[0].text {
                isSecondVolume = true
                report(
                    statement.location,
                    "repd replicates one volume per resource; 'volume \(arguments[0].text)' is a second volume "
                        + "(first: 'volume \(first.number)' at \(first.location.lineAndColumn))")
            } else if volumes.first == nil {
                volumes.first = (arguments[0].text, statement.location)
            }
        } else {
            report(arguments[0].location, "invalid volume number '\(arguments[0].text)'; expected 0 to 65535")
        }
        for inner in block.statements {
            guard let name = keyword(of: inner) else { continue }
            if inner.block != nil {
                if name != "skip" { report(inner.location, "unexpected block '\(inner.spelling) { ... }' in a volume section") }
            } else if OptionCatalog.volume.contains(name) {
                if !isSecondVolume { options.append(RawOption(nameWord: inner.head, values: Array(inner.arguments))) }
            } else {
                report(
                    inner.location,
                    "unknown option '\(name)' in volume section of \(scope)"
                        + Suggestion.hint(for: name, among: OptionCatalog.volume))
            }
        }
    }
}
