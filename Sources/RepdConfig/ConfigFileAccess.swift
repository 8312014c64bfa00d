/// What the loader needs of the file system. The command line passes RepdSystem's `LocalFiles`;
/// tests may pass anything. RepdConfig itself calls no system function.
public protocol ConfigFileAccess: Sendable {
    /// The whole file as text (invalid UTF-8 replaced), or why it cannot be read.
    func readText(_ path: String) -> Result<String, ConfigFileFailure>
    /// Paths matching a glob(3) pattern, sorted; empty when nothing matches.
    func glob(_ pattern: String) -> [String]
    func exists(_ path: String) -> Bool
    func isDirectory(_ path: String) -> Result<Bool, ConfigFileFailure>
    /// The path with links and `.`/`..` resolved (the path itself if that fails).
    func canonicalPath(_ path: String) -> String
}

/// Why a file could not be read: the system's explanation.
public struct ConfigFileFailure: Error, Sendable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// Path arithmetic for includes and the resource directory (pure).
enum ConfigPath {
    /// `a/b` for `a/b/c.res`, `.` for `c.res`, `/` for `/c.res`.
    static func directoryName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `directory/name`, or `name` alone when it is absolute or the directory is `.`.
    static func join(_ directory: String, _ name: String) -> String {
        if name.hasPrefix("/") || directory == "." || directory.isEmpty { return name }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// `text` with glob(3) metacharacters escaped, to use a directory name inside a pattern.
    static func escapeGlob(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    static func hasGlobMetacharacters(_ pattern: String) -> Bool {
        pattern.contains { "*?[".contains($0) }
    }
}
