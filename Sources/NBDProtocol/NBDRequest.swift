import NIOCore

/// One request of the transmission phase, as it came off the wire.
public struct NBDRequest: Sendable, Hashable {
    public static let headerSize = 28

    public var flags: NBD.CommandFlags
    /// The raw command number; `command` is nil for numbers this server does not know.
    public var rawCommand: UInt16
    public var cookie: UInt64
    public var offset: UInt64
    public var length: UInt32

    public init(flags: NBD.CommandFlags = [], command: NBD.Command, cookie: UInt64, offset: UInt64, length: UInt32) {
        self.init(flags: flags, rawCommand: command.rawValue, cookie: cookie, offset: offset, length: length)
    }

    public init(flags: NBD.CommandFlags, rawCommand: UInt16, cookie: UInt64, offset: UInt64, length: UInt32) {
        self.flags = flags
        self.rawCommand = rawCommand
        self.cookie = cookie
        self.offset = offset
        self.length = length
    }

    public var command: NBD.Command? { NBD.Command(rawValue: rawCommand) }

    /// Whether a payload of `length` bytes follows the header on the wire.
    public var hasPayload: Bool { rawCommand == NBD.Command.write.rawValue }

    public enum FramingError: Error, Sendable, Hashable, CustomStringConvertible {
        case badMagic(UInt32)
        public var description: String {
            switch self {
            case .badMagic(let magic): "bad request magic 0x\(String(magic, radix: 16))"
            }
        }
    }

    /// Reads one header if 28 bytes are there. Bad magic is a framing error: the stream can't be trusted.
    public static func decodeHeader(_ input: inout ByteBuffer) throws(FramingError) -> NBDRequest? {
        guard input.readableBytes >= headerSize else { return nil }
        let magic = input.getInteger(at: input.readerIndex, as: UInt32.self)!
        guard magic == NBD.requestMagic else { throw .badMagic(magic) }
        input.moveReaderIndex(forwardBy: 4)
        let flags = input.readInteger(as: UInt16.self)!
        let type = input.readInteger(as: UInt16.self)!
        let cookie = input.readInteger(as: UInt64.self)!
        let offset = input.readInteger(as: UInt64.self)!
        let length = input.readInteger(as: UInt32.self)!
        return NBDRequest(flags: NBD.CommandFlags(rawValue: flags), rawCommand: type, cookie: cookie, offset: offset, length: length)
    }

    public func encodeHeader(into out: inout ByteBuffer) {
        out.writeInteger(NBD.requestMagic)
        out.writeInteger(flags.rawValue)
        out.writeInteger(rawCommand)
        out.writeInteger(cookie)
        out.writeInteger(offset)
        out.writeInteger(length)
    }

    /// Checks a request against the export and what was negotiated. Nil means valid.
    /// Returns the error to reply with, and a message for the log.
    public func validate(in session: NBDSession) -> (NBDError, String)? {
        guard let command else { return (.invalid, "unknown command \(rawCommand)") }
        let known: NBD.CommandFlags = [.fua, .noHole, .dontFragment, .requestOne, .fastZero]
        if !flags.subtracting(known).isEmpty {
            return (.invalid, "unknown flags 0x\(String(flags.rawValue, radix: 16)) on \(command)")
        }
        let allowed: NBD.CommandFlags
        switch command {
        case .read: allowed = session.structuredReplies ? [.fua, .dontFragment] : [.fua]
        case .write, .trim: allowed = [.fua]
        case .writeZeroes: allowed = [.fua, .noHole, .fastZero]
        case .blockStatus: allowed = [.fua, .requestOne]
        case .flush, .cache, .disconnect: allowed = [.fua]
        case .resize: return (.invalid, "RESIZE is not supported")
        }
        if !flags.subtracting(allowed).isEmpty {
            return (.invalid, "flags 0x\(String(flags.rawValue, radix: 16)) are not valid for \(command)")
        }
        let size = session.export.size
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        switch command {
        case .flush, .disconnect:
            return nil
        case .read, .write:
            if length > NBDLimits.maximumPayload {
                return (command == .write ? .overflow : .overflow, "\(command) of \(length) bytes exceeds the maximum of \(NBDLimits.maximumPayload)")
            }
            if overflow || end > size {
                return (command == .write ? .noSpace : .invalid, "\(command) at \(offset)+\(length) is beyond the end of the export (\(size) bytes)")
            }
        case .trim, .writeZeroes:
            if overflow || end > size {
                return (.noSpace, "\(command) at \(offset)+\(length) is beyond the end of the export (\(size) bytes)")
            }
        case .cache:
            if overflow || end > size {
                return (.invalid, "CACHE at \(offset)+\(length) is beyond the end of the export")
            }
        case .blockStatus:
            guard session.blockStatusEnabled else {
                return (.invalid, "BLOCK_STATUS without a negotiated metadata context")
            }
            if overflow || end > size || length == 0 {
                return (.invalid, "BLOCK_STATUS at \(offset)+\(length) is outside the export")
            }
        case .resize:
            return (.invalid, "RESIZE is not supported")
        }
        if length == 0 && command != .cache {
            return (.invalid, "zero-length \(command)")
        }
        return nil
    }
}
