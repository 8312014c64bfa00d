import Foundation

/// A request from the CLI to a running daemon: one JSON object on one line.
public struct ControlRequest: Codable, Sendable, Equatable {
    public enum Command: String, Codable, Sendable {
        case status
        case primary
        case secondary
        case down
        case pauseSync = "pause-sync"
        case resumeSync = "resume-sync"
        case invalidate
        case invalidateRemote = "invalidate-remote"
        case verify
        case newCurrentUUID = "new-current-uuid"
        case connect
        case disconnect
        case detach
        case attach
        case resumeIO = "resume-io"
        case suspendIO = "suspend-io"
        case outdate
        case adjust
        case resize
    }

    public var command: Command
    public var force: Bool
    /// invalidate, invalidate-remote: resync the whole disk (true, the default) or only the blocks
    /// already marked out of sync. new-current-uuid: clear the bitmap (skip the initial sync).
    public var option: Bool?
    /// connect, adjust: only say what would happen.
    public var dryRun: Bool?
    /// adjust: the directory of resource files the CLI read (the daemon reads the same).
    public var configDirectory: String?

    public init(_ command: Command, force: Bool = false, option: Bool? = nil, dryRun: Bool? = nil, configDirectory: String? = nil) {
        self.command = command
        self.force = force
        self.option = option
        self.dryRun = dryRun
        self.configDirectory = configDirectory
    }
}

/// The daemon's answer: one JSON object on one line.
public struct ControlReply: Codable, Sendable, Equatable {
    public var ok: Bool
    public var message: String?
    public var status: ResourceStatus?

    public init(ok: Bool, message: String? = nil, status: ResourceStatus? = nil) {
        self.ok = ok
        self.message = message
        self.status = status
    }
}

/// Line framing with JSON: shared by the daemon and the CLI so both agree byte for byte.
public enum ControlCodec {
    public static func encodeLine<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var bytes = Array(try encoder.encode(value))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    public static func decode<T: Decodable>(_ type: T.Type, from line: some StringProtocol) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(line.utf8))
    }

    /// Pretty JSON for people and scripts (`status --json`), keys in a stable order.
    public static func prettyJSON<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
