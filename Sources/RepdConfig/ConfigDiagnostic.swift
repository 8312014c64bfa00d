/// One problem found in the configuration, with the place it was found.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// Where the offending token is; `nil` for problems that belong to no file
    /// (for example an unreadable directory or an unknown resource name).
    public var location: SourceLocation?
    /// What is wrong, and where possible what to do about it.
    public var message: String

    public init(location: SourceLocation?, message: String) {
        self.location = location
        self.message = message
    }

    /// `file:line:column: message`, or just the message when there is no location.
    public var description: String {
        guard let location else { return message }
        return "\(location): \(message)"
    }
}

/// All problems found in one run of the loader; never empty when thrown.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// Every diagnostic, ordered by file (in the order files were read), then line and column.
    public var diagnostics: [ConfigDiagnostic]

    public init(diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One diagnostic per line.
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

extension Array where Element == ConfigDiagnostic {
    /// Orders diagnostics by the order their files were read, then by line and column, keeping
    /// the original order for ties, and drops exact repeats (an error in `common` may be found
    /// once for every resource that inherits it).
    func sortedForReport(fileOrder: [String]) -> [ConfigDiagnostic] {
        var rank: [String: Int] = [:]
        for file in fileOrder where rank[file] == nil { rank[file] = rank.count }
        var seen = Set<ConfigDiagnostic>()
        let unique = filter { seen.insert($0).inserted }
        return unique.enumerated().sorted { a, b in
            let ka = Self.key(a.element, rank), kb = Self.key(b.element, rank)
            if ka != kb { return ka.lexicographicallyPrecedes(kb) }
            return a.offset < b.offset
        }.map(\.element)
    }

    private static func key(_ d: ConfigDiagnostic, _ rank: [String: Int]) -> [Int] {
        guard let l = d.location else { return [Int.max, 0, 0] }
        return [rank[l.file] ?? Int.max - 1, l.line, l.column]
    }
}
