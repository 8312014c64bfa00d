/// Reads a directory of DRBD 8.4 style configuration: `global_common.conf` (optional) and every
/// `*.res` file, following `include "pattern";` statements (patterns are relative to the
/// including file's directory and may use glob(3) wildcards; a pattern without wildcards must
/// match a file).
///
/// Every error of a run is reported at once, as `file:line:column: message`.
public struct ConfigLoader: Sendable {
    /// The directory holding `global_common.conf` and the `*.res` files.
    public var directory: String
    /// How files are read (RepdStorage's `ConfigLoader(directory:)` gives the local file system).
    public let files: any ConfigFileAccess

    public init(directory: String, files: any ConfigFileAccess) {
        self.directory = directory
        self.files = files
    }

    static let globalCommonFile = "global_common.conf"

    private var displayDirectory: String {
        var directory = directory.isEmpty ? "." : directory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        return directory
    }

    private func path(_ name: String) -> String { ConfigPath.join(displayDirectory, name) }

    private var resourceFiles: [String] {
        files.glob(ConfigPath.join(ConfigPath.escapeGlob(displayDirectory), "*.res")).sorted()
    }

    private func checkDirectory() throws(ConfigError) {
        switch files.isDirectory(displayDirectory) {
        case .success(true):
            return
        case .success(false):
            throw ConfigError(diagnostics: [ConfigDiagnostic(location: nil, message: "'\(displayDirectory)' is not a directory")])
        case .failure(let failure):
            throw ConfigError(diagnostics: [ConfigDiagnostic(
                location: nil, message: "cannot read configuration directory '\(displayDirectory)': \(failure.reason)")])
        }
    }

    /// Parses `global_common.conf` (if present) and every `*.res` in the directory (plus
    /// includes) and returns the names of all resources, sorted, or all errors of all files.
    public func resourceNames() throws(ConfigError) -> [String] {
        try checkDirectory()
        var reader = UnitReader(files: files)
        var units: [ConfigUnit] = []
        let globalCommon = path(Self.globalCommonFile)
        if files.exists(globalCommon) { units.append(reader.readUnit(path: globalCommon)) }
        for file in resourceFiles where !reader.hasRead(file) {
            units.append(reader.readUnit(path: file))
        }
        let resources = try Self.validate(units, fileOrder: reader.fileOrder)
        return Set(resources.map(\.name)).sorted()
    }

    /// Resolves resource `name` for node `node` (the `on NODE` section is local; the other one is
    /// the peer).
    ///
    /// Only the files that matter must be free of errors: `global_common.conf` and the file that
    /// defines the resource, each with what it includes. `NAME.res` is read first; the other
    /// `*.res` files are read, in name order, only if the resource is not defined there, and
    /// errors in a file that does not define the resource are then ignored, so a broken unrelated
    /// file does not stop this resource. (``resourceNames()`` reads and checks everything, so it
    /// also finds a resource defined twice in different files.)
    ///
    /// Errors: resource not found (the message lists the resources that exist, followed by the
    /// errors of files that could not be read cleanly, which may be why), no `on` section for this
    /// node (lists the host names; hint `--node`), and any parse or validation error in the files
    /// that matter.
    public func resolve(resource name: String, node: String) throws(ConfigError) -> ResolvedResource {
        try checkDirectory()
        var reader = UnitReader(files: files)
        var relevant: [ConfigUnit] = []
        let globalCommon = path(Self.globalCommonFile)
        if files.exists(globalCommon) { relevant.append(reader.readUnit(path: globalCommon)) }
        var found = relevant.contains { $0.defines(name) }
        var others: [ConfigUnit] = []
        // `NAME.res` first (never a path: a name with a slash cannot name a file here).
        let own = name.contains("/") || name.isEmpty ? nil : path(name + ".res")
        let candidates = (own.map { [$0] } ?? []) + resourceFiles.filter { $0 != own }
        for file in candidates where !found && files.exists(file) && !reader.hasRead(file) {
            let unit = reader.readUnit(path: file)
            if unit.defines(name) {
                relevant.append(unit)
                found = true
            } else {
                others.append(unit)
            }
        }
        guard found else {
            let all = relevant + others
            let names = Set(all.flatMap(\.resourceNames)).sorted()
            let message = names.isEmpty
                ? "resource '\(name)' not found: no resources are defined in '\(displayDirectory)'"
                : "resource '\(name)' not found in '\(displayDirectory)'; defined resources: " + names.joined(separator: ", ")
                    + Suggestion.hint(for: name, among: names)
            let related = all.flatMap(\.diagnostics).sortedForReport(fileOrder: reader.fileOrder)
            throw ConfigError(diagnostics: [ConfigDiagnostic(location: nil, message: message)] + related)
        }
        let resources = try Self.validate(relevant, fileOrder: reader.fileOrder)
        guard let merged = resources.first(where: { $0.name == name }) else {
            throw ConfigError(diagnostics: [ConfigDiagnostic(location: nil, message: "resource '\(name)' not found")])
        }
        switch Resolver.resolve(merged, node: node) {
        case .success(let resolved): return resolved
        case .failure(let error): throw error
        }
    }

    /// Parses a single file's text (for tests): all diagnostics, in order. `include`s are looked
    /// up relative to the directory part of `file`.
    public static func diagnostics(parsing text: String, file: String, files: any ConfigFileAccess) -> [ConfigDiagnostic] {
        var reader = UnitReader(files: files)
        let unit = reader.readUnit(text: text, file: file)
        let (validation, _) = Validator.validate(unit.documents)
        return (unit.diagnostics + validation).sortedForReport(fileOrder: reader.fileOrder)
    }

    /// Validates the units as one configuration; throws every problem found in them.
    private static func validate(_ units: [ConfigUnit], fileOrder: [String]) throws(ConfigError) -> [MergedResource] {
        let (validation, resources) = Validator.validate(units.flatMap(\.documents))
        let diagnostics = (units.flatMap(\.diagnostics) + validation).sortedForReport(fileOrder: fileOrder)
        guard diagnostics.isEmpty else { throw ConfigError(diagnostics: diagnostics) }
        return resources
    }
}
