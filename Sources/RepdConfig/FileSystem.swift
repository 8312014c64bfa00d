#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file operations the loader needs, over the C library. Nothing else in the module
/// touches the file system.
enum FileSystem {
    /// A failed operation, with the system's explanation (`No such file or directory`).
    struct Failure: Error, Sendable {
        var reason: String
    }

    private static func lastError() -> Failure {
        Failure(reason: String(cString: strerror(errno)))
    }

    /// The whole file as text (invalid UTF-8 is replaced, not rejected).
    static func read(_ path: String) -> Result<String, Failure> {
        guard let file = fopen(path, "rb") else { return .failure(lastError()) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count > 0 { bytes += buffer[0..<count] }
            if count < buffer.count {
                if ferror(file) != 0 { return .failure(lastError()) }
                break
            }
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// Paths matching a glob(3) pattern, sorted; empty when nothing matches.
    static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        #if canImport(Glibc)
        let status = Glibc.glob(pattern, 0, nil, &result)
        #else
        let status = Darwin.glob(pattern, 0, nil, &result)
        #endif
        guard status == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { String(cString: $0) }
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func isDirectory(_ path: String) -> Result<Bool, Failure> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failure(lastError()) }
        return .success((info.st_mode & S_IFMT) == S_IFDIR)
    }

    /// The path with symbolic links and `.`/`..` resolved, to recognise a file read twice.
    static func canonicalPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

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
