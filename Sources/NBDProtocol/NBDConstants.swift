/// Numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), in one place.
/// Everything on the wire is big-endian.
public enum NBD {
    // Handshake
    public static let initMagic: UInt64 = 0x4E42_444D_4147_4943          // "NBDMAGIC"
    public static let optionMagic: UInt64 = 0x4948_4156_454F_5054        // "IHAVEOPT"
    public static let optionReplyMagic: UInt64 = 0x0003_E889_0455_65A9
    public static let requestMagic: UInt32 = 0x2560_9513
    public static let simpleReplyMagic: UInt32 = 0x6744_6698
    public static let structuredReplyMagic: UInt32 = 0x668E_33EF

    // Handshake flags (server) and client flags
    public static let flagFixedNewstyle: UInt16 = 1 << 0
    public static let flagNoZeroes: UInt16 = 1 << 1
    public static let clientFlagFixedNewstyle: UInt32 = 1 << 0
    public static let clientFlagNoZeroes: UInt32 = 1 << 1

    /// Transmission flags, sent with the export size.
    public struct TransmissionFlags: OptionSet, Sendable, Hashable {
        public var rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let hasFlags = Self(rawValue: 1 << 0)
        public static let readOnly = Self(rawValue: 1 << 1)
        public static let sendFlush = Self(rawValue: 1 << 2)
        public static let sendFUA = Self(rawValue: 1 << 3)
        public static let rotational = Self(rawValue: 1 << 4)
        public static let sendTrim = Self(rawValue: 1 << 5)
        public static let sendWriteZeroes = Self(rawValue: 1 << 6)
        public static let sendDF = Self(rawValue: 1 << 7)
        public static let canMultiConn = Self(rawValue: 1 << 8)
        public static let sendResize = Self(rawValue: 1 << 9)
        public static let sendCache = Self(rawValue: 1 << 10)
        public static let sendFastZero = Self(rawValue: 1 << 11)
    }

    /// Option numbers sent by the client during negotiation.
    public enum Option: UInt32, Sendable {
        case exportName = 1
        case abort = 2
        case list = 3
        case peekExport = 4
        case startTLS = 5
        case info = 6
        case go = 7
        case structuredReply = 8
        case listMetaContext = 9
        case setMetaContext = 10
        case extendedHeaders = 11
    }

    /// Option reply types. Errors have the high bit set.
    public enum OptionReply: UInt32, Sendable {
        case ack = 1
        case server = 2
        case info = 3
        case metaContext = 4
        case errUnsupported = 0x8000_0001
        case errPolicy = 0x8000_0002
        case errInvalid = 0x8000_0003
        case errPlatform = 0x8000_0004
        case errTLSRequired = 0x8000_0005
        case errUnknown = 0x8000_0006
        case errShutdown = 0x8000_0007
        case errBlockSizeRequired = 0x8000_0008
        case errTooBig = 0x8000_0009
    }

    public enum Info: UInt16, Sendable {
        case export = 0
        case name = 1
        case description = 2
        case blockSize = 3
    }

    /// Commands in the transmission phase.
    public enum Command: UInt16, Sendable, CustomStringConvertible {
        case read = 0
        case write = 1
        case disconnect = 2
        case flush = 3
        case trim = 4
        case cache = 5
        case writeZeroes = 6
        case blockStatus = 7
        case resize = 8

        public var description: String {
            switch self {
            case .read: "READ"
            case .write: "WRITE"
            case .disconnect: "DISC"
            case .flush: "FLUSH"
            case .trim: "TRIM"
            case .cache: "CACHE"
            case .writeZeroes: "WRITE_ZEROES"
            case .blockStatus: "BLOCK_STATUS"
            case .resize: "RESIZE"
            }
        }
    }

    /// Command flags.
    public struct CommandFlags: OptionSet, Sendable, Hashable {
        public var rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let fua = Self(rawValue: 1 << 0)
        public static let noHole = Self(rawValue: 1 << 1)
        public static let dontFragment = Self(rawValue: 1 << 2)
        public static let requestOne = Self(rawValue: 1 << 3)
        public static let fastZero = Self(rawValue: 1 << 4)
        public static let payloadLength = Self(rawValue: 1 << 5)
    }

    /// Structured reply chunk types.
    public enum ChunkType: UInt16, Sendable {
        case none = 0
        case offsetData = 1
        case offsetHole = 2
        case blockStatus = 5
        case error = 0x8001
        case errorOffset = 0x8002
    }
    public static let chunkFlagDone: UInt16 = 1 << 0

    /// base:allocation flags in block status descriptors.
    public static let stateHole: UInt32 = 1 << 0
    public static let stateZero: UInt32 = 1 << 1

    /// The only metadata context repd offers.
    public static let baseAllocation = "base:allocation"
    public static let baseAllocationID: UInt32 = 1
}

/// Error numbers sent in replies (the protocol fixes these values, independent of the host).
public enum NBDError: UInt32, Error, Sendable, CustomStringConvertible {
    case permission = 1      // EPERM
    case io = 5              // EIO
    case noMemory = 12       // ENOMEM
    case invalid = 22        // EINVAL
    case noSpace = 28        // ENOSPC
    case overflow = 75       // EOVERFLOW
    case notSupported = 95   // ENOTSUP
    case shutdown = 108      // ESHUTDOWN

    public var description: String {
        switch self {
        case .permission: "EPERM"
        case .io: "EIO"
        case .noMemory: "ENOMEM"
        case .invalid: "EINVAL"
        case .noSpace: "ENOSPC"
        case .overflow: "EOVERFLOW"
        case .notSupported: "ENOTSUP"
        case .shutdown: "ESHUTDOWN"
        }
    }
}
