#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file operations the configuration loader needs (read, glob, exists, directories,
/// realpath), over the C library. RepdConfig declares what it needs as `ConfigFileAccess`; the
/// command line hands it this.
public struct LocalFiles: Sendable {
    public init() {}

    /// A failed operation, with the system's explanation (`No such file or directory`).
    public struct Failure: Error, Sendable {
        public var reason: String
    }

    private static func lastError() -> Failure {
        Failure(reason: String(cString: strerror(errno)))
    }

    /// The whole file as text (invalid UTF-8 is replaced, not rejected).
    public func readText(atPath path: String) -> Result<String, Failure> {
        guard let file = fopen(path, "rb") else { return .failure(Self.lastError()) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count > 0 { bytes += buffer[0..<count] }
            if count < buffer.count {
                if ferror(file) != 0 { return .failure(Self.lastError()) }
                break
            }
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// Paths matching a glob(3) pattern, sorted; empty when nothing matches.
    public func glob(_ pattern: String) -> [String] {
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

    public func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public func isDirectory(atPath path: String) -> Result<Bool, Failure> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failure(Self.lastError()) }
        return .success((info.st_mode & S_IFMT) == S_IFDIR)
    }

    /// The path with symbolic links and `.`/`..` resolved, to recognise a file read twice.
    public func canonicalPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

}
