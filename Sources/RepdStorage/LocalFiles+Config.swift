import RepdConfig
import RepdSystem

/// The configuration loader reads the local file system through RepdSystem.
extension LocalFiles: ConfigFileAccess {
    public func readText(_ path: String) -> Result<String, ConfigFileFailure> {
        readText(atPath: path).mapError { ConfigFileFailure(reason: $0.reason) }
    }

    public func isDirectory(_ path: String) -> Result<Bool, ConfigFileFailure> {
        isDirectory(atPath: path).mapError { ConfigFileFailure(reason: $0.reason) }
    }
}

extension ConfigLoader {
    /// A loader over the local file system.
    public init(directory: String) {
        self.init(directory: directory, files: LocalFiles())
    }

    /// `diagnostics(parsing:file:files:)` over the local file system.
    public static func diagnostics(parsing text: String, file: String) -> [ConfigDiagnostic] {
        diagnostics(parsing: text, file: file, files: LocalFiles())
    }
}
