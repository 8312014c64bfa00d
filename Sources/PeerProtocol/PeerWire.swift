import NIOCore

/// Numbers of the replication protocol spoken between two repd nodes (Docs/WireProtocol.md).
/// Everything on the wire is big-endian.
public enum PeerWire {
    /// "RPD1": the first four bytes of every frame.
    public static let magic: UInt32 = 0x5250_4431
    /// magic (4) + message type (2) + flags (2) + payload length (4).
    public static let headerSize = 12
    /// The largest payload of any frame: a 32 MiB write plus room for its fixed fields.
    public static let maximumPayload = (32 << 20) + 4096
    /// The largest payload of a frame that is not a `write` or `syncData` (a bitmap page is 4100 bytes).
    public static let maximumControlPayload = 8192
    /// The protocol version this build speaks (it speaks only this one).
    public static let currentVersion: UInt16 = 1
    /// Strings are a u16 length and that many bytes of UTF-8, at most this many.
    public static let maximumStringLength = 255
    /// The size of one page of the dirty bitmap, as carried by `bitmapPage`.
    public static let bitmapPageSize = 4096
    /// Bounds of an authentication challenge.
    public static let challengeLengths: ClosedRange<Int> = 32...64
    /// The longest MAC or checksum digest (SHA-512 size).
    public static let maximumDigestLength = 64
}

/// The message type, the u16 after the magic.
public enum PeerMessageType: UInt16, Sendable, CaseIterable {
    case hello = 1
    case authChallenge = 2
    case authResponse = 3
    case authResult = 4
    case chosen = 5
    case state = 16
    case write = 32
    case writeAck = 33
    case receiveAck = 34
    case flush = 35
    case flushAck = 36
    case ping = 48
    case pingAck = 49
    case bitmapPage = 64
    case bitmapDone = 65
    case syncStart = 66
    case syncData = 67
    case syncAck = 68
    case syncDone = 69
    case checksumRequest = 70
    case checksumReply = 71
    case syncPause = 72
    case resyncRequest = 73
    case verifyNotice = 74
    case dataRequest = 75
    case dataReply = 76
    case roleRequest = 77
    case roleReply = 78
    case fenceRequest = 80
    case fenceReply = 81
    case error = 255

    /// The largest payload a frame of this type may announce. Checked on the header, before any of
    /// the payload is buffered: only data-carrying messages may be large.
    public var maximumPayload: Int {
        switch self {
        case .write, .syncData, .dataReply: PeerWire.maximumPayload
        default: PeerWire.maximumControlPayload
        }
    }
}

/// A violation of the wire format. Every one of them ends the connection: after it the byte stream
/// cannot be trusted. The descriptions are meant for the operator's log.
public enum PeerProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first four bytes of a frame are not "RPD1".
    case badMagic(UInt32)
    /// A message type this version does not know.
    case unknownType(UInt16)
    /// A frame announces more payload than its type may carry.
    case oversized(type: UInt16, length: UInt32)
    /// A frame whose header or payload does not follow the format of its type.
    case malformed(type: UInt16, reason: String)

    public var description: String {
        switch self {
        case .badMagic(let magic):
            "bad frame magic 0x\(hex(magic, digits: 8)), expected 0x\(hex(PeerWire.magic, digits: 8)) (\"RPD1\"): "
                + "the peer is not a repd node or the stream lost its framing"
        case .unknownType(let type):
            "unknown message type \(type): the peer speaks a protocol this node does not know"
        case .oversized(let type, let length):
            "\(typeName(type)) frame announces a payload of \(length) bytes, "
                + "more than the \(PeerMessageType(rawValue: type)?.maximumPayload ?? PeerWire.maximumPayload) allowed"
        case .malformed(let type, let reason):
            "malformed \(typeName(type)) message: \(reason)"
        }
    }
}

func typeName(_ raw: UInt16) -> String {
    if let type = PeerMessageType(rawValue: raw) { return "\(type)" }
    return "type \(raw)"
}

func hex<T: FixedWidthInteger>(_ value: T, digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}
