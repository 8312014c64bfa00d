/// A top-level file with everything it includes, parsed: the unit whose errors count together.
struct ConfigUnit: Sendable {
    var documents: [ConfigDocument] = []
    /// Lexical, syntax and structure errors of these files, and failed includes.
    var diagnostics: [ConfigDiagnostic] = []

    func defines(_ resource: String) -> Bool {
        documents.contains { $0.resources.contains { $0.name == resource } }
    }

    var resourceNames: [String] { documents.flatMap { $0.resources.map(\.name) } }
}

/// Reads files into ``ConfigUnit``s, following `include`s. Remembers what it has read, so a
/// file reached twice (by two includes, or by an include and the directory scan) is read once.
struct UnitReader {
    static let maxIncludeDepth = 10
    let files: any ConfigFileAccess

    init(files: any ConfigFileAccess) {
        self.files = files
    }

    private var visited = Set<String>()
    /// Every file read, in order, for sorting diagnostics.
    private(set) var fileOrder: [String] = []

    func hasRead(_ path: String) -> Bool {
        visited.contains(files.canonicalPath(path))
    }

    /// Reads `path` and its includes. An unreadable file is a diagnostic of the unit.
    mutating func readUnit(path: String) -> ConfigUnit {
        var unit = ConfigUnit()
        visited.insert(files.canonicalPath(path))
        switch files.readText(path) {
        case .success(let text):
            parse(text, file: path, depth: 0, into: &unit)
        case .failure(let failure):
            fileOrder.append(path)
            unit.diagnostics.append(ConfigDiagnostic(location: nil, message: "cannot read '\(path)': \(failure.reason)"))
        }
        return unit
    }

    /// Parses `text` as the file `file` (which need not exist); includes are looked up relative to
    /// the directory part of `file`.
    mutating func readUnit(text: String, file: String) -> ConfigUnit {
        var unit = ConfigUnit()
        visited.insert(files.canonicalPath(file))
        parse(text, file: file, depth: 0, into: &unit)
        return unit
    }

    private mutating func parse(_ text: String, file: String, depth: Int, into unit: inout ConfigUnit) {
        fileOrder.append(file)
        let (statements, syntaxDiagnostics) = Parser.parse(text, file: file)
        let (document, structureDiagnostics) = DocumentBuilder.build(statements, file: file)
        unit.documents.append(document)
        unit.diagnostics += syntaxDiagnostics + structureDiagnostics
        for include in document.includes {
            follow(include, from: file, depth: depth + 1, into: &unit)
        }
    }

    private mutating func follow(_ include: IncludeDecl, from file: String, depth: Int, into unit: inout ConfigUnit) {
        guard depth <= Self.maxIncludeDepth else {
            unit.diagnostics.append(ConfigDiagnostic(
                location: include.location,
                message: "includes are nested more than \(Self.maxIncludeDepth) levels deep"))
            return
        }
        let directory = ConfigPath.directoryName(of: file)
        let pattern = include.pattern.hasPrefix("/")
            ? include.pattern : ConfigPath.join(ConfigPath.escapeGlob(directory), include.pattern)
        let matches = files.glob(pattern)
        if matches.isEmpty && !ConfigPath.hasGlobMetacharacters(include.pattern) {
            let path = ConfigPath.join(directory, include.pattern)
            unit.diagnostics.append(ConfigDiagnostic(
                location: include.location,
                message: "cannot include '\(include.pattern)': no such file" + (path == include.pattern ? "" : " (looked for \(path))")))
            return
        }
        for path in matches {
            let canonical = files.canonicalPath(path)
            guard visited.insert(canonical).inserted else { continue }
            switch files.readText(path) {
            case .success(let text):
                parse(text, file: path, depth: depth, into: &unit)
            case .failure(let failure):
                unit.diagnostics.append(ConfigDiagnostic(
                    location: include.location, message: "cannot include '\(path)': \(failure.reason)"))
            }
        }
    }
}
