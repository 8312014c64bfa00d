#if canImport(Glibc)
import Glibc
#endif
import CRepdSystem
import SystemPackage

/// One netlink attribute: a type and its payload. Nested attributes are attributes encoded in the
/// payload of another.
///
/// Wire format (<linux/netlink.h>), host byte order, every attribute padded to 4 bytes:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | `nla_len`: 4 + payload length (without padding) |
/// | 2 | 2 | `nla_type` (bit 15: nested, bit 14: network byte order) |
/// | 4 | n | payload |
public struct NetlinkAttribute: Sendable, Equatable {
    public static let nestedFlag: UInt16 = 0x8000
    public static let typeMask: UInt16 = 0x3FFF

    public var type: UInt16
    public var payload: [UInt8]

    public init(type: UInt16, payload: [UInt8]) {
        self.type = type
        self.payload = payload
    }

    public static func u8(_ type: UInt16, _ value: UInt8) -> NetlinkAttribute { .init(type: type, payload: [value]) }
    public static func u16(_ type: UInt16, _ value: UInt16) -> NetlinkAttribute { .init(type: type, payload: bytes(of: value)) }
    public static func u32(_ type: UInt16, _ value: UInt32) -> NetlinkAttribute { .init(type: type, payload: bytes(of: value)) }
    public static func u64(_ type: UInt16, _ value: UInt64) -> NetlinkAttribute { .init(type: type, payload: bytes(of: value)) }
    /// A NUL-terminated string (NLA_STRING / NLA_NUL_STRING both accept it).
    public static func string(_ type: UInt16, _ value: String) -> NetlinkAttribute { .init(type: type, payload: Array(value.utf8) + [0]) }
    public static func nested(_ type: UInt16, _ children: [NetlinkAttribute]) -> NetlinkAttribute {
        .init(type: type | nestedFlag, payload: encode(children))
    }

    /// The type without the nested and byte-order flags.
    public var kind: UInt16 { type & Self.typeMask }

    public var u8Value: UInt8? { payload.count >= 1 ? payload[0] : nil }
    public var u16Value: UInt16? { Self.integer(payload) }
    public var u32Value: UInt32? { Self.integer(payload) }
    public var u64Value: UInt64? { Self.integer(payload) }
    public var stringValue: String {
        String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self)
    }
    public var children: [NetlinkAttribute] { Self.decode(payload[...]) }

    public static func encode(_ attributes: [NetlinkAttribute]) -> [UInt8] {
        var out: [UInt8] = []
        for attribute in attributes {
            out += bytes(of: UInt16(4 + attribute.payload.count))
            out += bytes(of: attribute.type)
            out += attribute.payload
            out += [UInt8](repeating: 0, count: padding(4 + attribute.payload.count))
        }
        return out
    }

    /// Decodes a run of attributes; a truncated last attribute is ignored.
    public static func decode(_ bytes: ArraySlice<UInt8>) -> [NetlinkAttribute] {
        var result: [NetlinkAttribute] = []
        var at = bytes.startIndex
        while bytes.endIndex - at >= 4 {
            let length = Int(UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8)
            let type = UInt16(bytes[at + 2]) | UInt16(bytes[at + 3]) << 8
            guard length >= 4, at + length <= bytes.endIndex else { break }
            result.append(NetlinkAttribute(type: type, payload: Array(bytes[(at + 4)..<(at + length)])))
            at += length + padding(length)
        }
        return result
    }

    static func padding(_ length: Int) -> Int { (4 - length % 4) % 4 }

    static func bytes<T: FixedWidthInteger>(of value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    static func integer<T: FixedWidthInteger>(_ payload: [UInt8]) -> T? {
        guard payload.count >= MemoryLayout<T>.size else { return nil }
        var value: T = 0
        for (i, byte) in payload.prefix(MemoryLayout<T>.size).enumerated() { value |= T(byte) << (8 * i) }
        return value
    }
}

/// Generic netlink messages: a netlink header, a generic netlink header, attributes.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | `nlmsg_len`: the whole message |
/// | 4 | 2 | `nlmsg_type`: the family id (or NLMSG_ERROR = 2, NLMSG_DONE = 3) |
/// | 6 | 2 | `nlmsg_flags`: NLM_F_REQUEST = 1, NLM_F_ACK = 4 |
/// | 8 | 4 | `nlmsg_seq` |
/// | 12 | 4 | `nlmsg_pid`: 0 towards the kernel |
/// | 16 | 1 | `cmd` |
/// | 17 | 1 | `version` |
/// | 18 | 2 | reserved |
/// | 20 | n | attributes |
///
/// An NLMSG_ERROR message carries a signed errno (0 is the acknowledgement) and the request's header.
public enum GenericNetlinkMessage {
    public static let controllerFamily: UInt16 = 0x10      // GENL_ID_CTRL
    static let typeError: UInt16 = 2
    static let typeDone: UInt16 = 3
    static let flagRequest: UInt16 = 1
    static let flagAck: UInt16 = 4
    static let headerSize = 20

    public enum Parsed: Sendable, Equatable {
        /// An acknowledgement (code 0) or a failure (a negative errno).
        case status(sequence: UInt32, code: Int32)
        case reply(sequence: UInt32, command: UInt8, attributes: [NetlinkAttribute])
        case done(sequence: UInt32)
    }

    public static func request(family: UInt16, command: UInt8, version: UInt8, sequence: UInt32, attributes: [NetlinkAttribute]) -> [UInt8] {
        let body = NetlinkAttribute.encode(attributes)
        var out: [UInt8] = []
        out += NetlinkAttribute.bytes(of: UInt32(headerSize + body.count))
        out += NetlinkAttribute.bytes(of: family)
        out += NetlinkAttribute.bytes(of: flagRequest | flagAck)
        out += NetlinkAttribute.bytes(of: sequence)
        out += NetlinkAttribute.bytes(of: UInt32(0))
        out += [command, version, 0, 0]
        out += body
        return out
    }

    /// The messages of one datagram (the kernel may put several in one).
    public static func parse(_ datagram: ArraySlice<UInt8>) -> [Parsed] {
        var result: [Parsed] = []
        var at = datagram.startIndex
        while datagram.endIndex - at >= 16 {
            let header = Array(datagram[at..<(at + 16)])
            guard let length32: UInt32 = NetlinkAttribute.integer(header), let type: UInt16 = NetlinkAttribute.integer(Array(header[4..<6])),
                  let sequence: UInt32 = NetlinkAttribute.integer(Array(header[8..<12]))
            else { break }
            let length = Int(length32)
            guard length >= 16, at + length <= datagram.endIndex else { break }
            let body = datagram[(at + 16)..<(at + length)]
            switch type {
            case typeError:
                let code: UInt32 = NetlinkAttribute.integer(Array(body.prefix(4))) ?? 0
                result.append(.status(sequence: sequence, code: Int32(bitPattern: code)))
            case typeDone:
                result.append(.done(sequence: sequence))
            default:
                if body.count >= 4 {
                    result.append(.reply(sequence: sequence, command: body[body.startIndex], attributes: NetlinkAttribute.decode(body.dropFirst(4))))
                }
            }
            at += (length + 3) & ~3
        }
        return result
    }
}

/// A NETLINK_GENERIC socket for request/reply exchanges with the kernel, bounded in time.
public final class GenericNetlinkSocket {
    private let fd: Int32
    private var sequence: UInt32 = 1

    public init(timeoutMilliseconds: Int32 = 10_000) throws(SystemError) {
        fd = try retryingEINTR("socket(AF_NETLINK, NETLINK_GENERIC)") { crepd_netlink_generic_socket(timeoutMilliseconds) }
    }

    deinit { close(fd) }

    /// The numeric id of a generic netlink family (e.g. "nbd"); ENOENT when the kernel has none by
    /// that name (the module is not loaded or not built).
    public func family(named name: String) throws(SystemError) -> UInt16 {
        // CTRL_CMD_GETFAMILY = 3, CTRL_ATTR_FAMILY_ID = 1, CTRL_ATTR_FAMILY_NAME = 2.
        let replies = try request(
            family: GenericNetlinkMessage.controllerFamily, command: 3, version: 1,
            attributes: [.string(2, name)], what: "genetlink family \(name)")
        for attributes in replies {
            if let id = attributes.first(where: { $0.kind == 1 })?.u16Value { return id }
        }
        throw SystemError("genetlink family", name, errno: .noSuchFileOrDirectory)
    }

    /// Sends one request and collects the attributes of every reply until the acknowledgement.
    /// A negative status from the kernel is thrown as that errno.
    public func request(family: UInt16, command: UInt8, version: UInt8, attributes: [NetlinkAttribute], what: String) throws(SystemError) -> [[NetlinkAttribute]] {
        let seq = sequence
        sequence &+= 1
        let message = GenericNetlinkMessage.request(family: family, command: command, version: version, sequence: seq, attributes: attributes)
        _ = try retryingEINTR("netlink send", what) { message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } }
        var replies: [[NetlinkAttribute]] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try retryingEINTR("netlink receive", what) { buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
            for parsed in GenericNetlinkMessage.parse(buffer[0..<n]) {
                switch parsed {
                case .reply(let s, _, let attrs) where s == seq:
                    replies.append(attrs)
                case .status(let s, let code) where s == seq:
                    if code == 0 { return replies }
                    throw SystemError("netlink", what, errno: Errno(rawValue: -code))
                case .done(let s) where s == seq:
                    return replies
                default:
                    continue
                }
            }
        }
    }
}
