/// What the server says about an export during negotiation.
public struct NBDExportInfo: Sendable, Hashable {
    public var name: String
    public var description: String
    public var size: UInt64
    public var flags: NBD.TransmissionFlags
    public var minimumBlockSize: UInt32
    public var preferredBlockSize: UInt32
    public var maximumBlockSize: UInt32

    public init(
        name: String, description: String = "", size: UInt64, flags: NBD.TransmissionFlags,
        minimumBlockSize: UInt32 = 1, preferredBlockSize: UInt32 = 4096, maximumBlockSize: UInt32 = NBDLimits.maximumPayload
    ) {
        self.name = name
        self.description = description
        self.size = size
        self.flags = flags.union(.hasFlags)
        self.minimumBlockSize = minimumBlockSize
        self.preferredBlockSize = preferredBlockSize
        self.maximumBlockSize = maximumBlockSize
    }
}

/// Limits the server enforces on what a client may send.
public enum NBDLimits {
    /// The largest READ or WRITE payload (32 MiB, as the reference server and nbdkit).
    public static let maximumPayload: UInt32 = 32 << 20
    /// The largest option payload accepted during negotiation; beyond it the connection is closed
    /// rather than buffering what a hostile client claims to send.
    public static let maximumOptionLength: UInt32 = 64 << 10
    /// The longest string (export name, query) the protocol allows.
    public static let maximumStringLength: UInt32 = 4096
}

/// The outcome of negotiation: what the transmission phase needs to know.
public struct NBDSession: Sendable, Hashable {
    public var export: NBDExportInfo
    public var structuredReplies: Bool
    /// The metadata contexts the client selected, by id.
    public var metaContexts: [UInt32: String]

    public init(export: NBDExportInfo, structuredReplies: Bool, metaContexts: [UInt32: String]) {
        self.export = export
        self.structuredReplies = structuredReplies
        self.metaContexts = metaContexts
    }

    public var blockStatusEnabled: Bool { metaContexts[NBD.baseAllocationID] != nil }
}
