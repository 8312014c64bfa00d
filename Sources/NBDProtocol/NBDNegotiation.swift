import NIOCore

/// The server side of fixed-newstyle negotiation, as a state machine that does no I/O.
///
/// Feed it the bytes received so far; it consumes whole messages and returns what to do:
/// send a reply, close the connection, or start the transmission phase. `nil` means it needs
/// more bytes. Only broken framing closes a connection; a bad option gets an error reply and
/// negotiation goes on.
public struct NBDNegotiation: Sendable {
    public enum Action: Sendable {
        /// Send these bytes and keep negotiating.
        case send(ByteBuffer)
        /// Send these bytes (may be empty), then close the connection.
        case sendAndClose(ByteBuffer, reason: String)
        /// Send these bytes, then switch to the transmission phase.
        case transmit(ByteBuffer, NBDSession)
        /// Send these bytes (the ACK of NBD_OPT_STARTTLS) in clear, then run the TLS handshake
        /// and go on negotiating inside TLS. Bytes the client sent after STARTTLS and before its
        /// TLS handshake must be dropped with the connection, never read as options.
        case startTLS(ByteBuffer)
    }

    /// `nbd-tls`: whether a client may (allow) or must (require) upgrade with NBD_OPT_STARTTLS.
    public enum TLSPolicy: Sendable {
        case off, allow, require
    }

    private enum State: Sendable {
        case awaitingClientFlags
        case awaitingOption
        case finished
    }

    private var state: State = .awaitingClientFlags
    private var noZeroes = false
    private var structuredReplies = false

    /// The export's transmission flags as this client may see them: NBD_FLAG_SEND_DF only once
    /// structured replies are negotiated (the spec says a server MUST NOT set it otherwise).
    func advertisedFlags(_ export: NBDExportInfo) -> NBD.TransmissionFlags {
        var flags = export.flags
        if !structuredReplies { flags.remove(.sendDF) }
        return flags
    }
    private var metaContexts: [UInt32: String] = [:]
    private let exports: [NBDExportInfo]
    private let tls: TLSPolicy
    /// NBD_OPT_STARTTLS was acknowledged: everything from here on is inside TLS.
    public private(set) var tlsActive = false

    /// - Parameter exports: the exports offered; the first is also the default export (empty name).
    /// - Parameter tls: whether this listener offers (or requires) NBD_OPT_STARTTLS.
    public init(exports: [NBDExportInfo], tls: TLSPolicy = .off) {
        precondition(!exports.isEmpty)
        self.exports = exports
        self.tls = tls
    }

    /// The server's greeting, sent as soon as a client connects.
    public static func greeting() -> ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(NBD.initMagic)
        out.writeInteger(NBD.optionMagic)
        out.writeInteger(NBD.flagFixedNewstyle | NBD.flagNoZeroes)
        return out
    }

    public var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    private func export(named name: String) -> NBDExportInfo? {
        if name.isEmpty { return exports.first }
        return exports.first { $0.name == name }
    }

    /// Consumes one message from `input` if it is complete.
    public mutating func process(_ input: inout ByteBuffer) -> Action? {
        switch state {
        case .finished:
            return nil
        case .awaitingClientFlags:
            guard let flags = input.readInteger(as: UInt32.self) else { return nil }
            let known = NBD.clientFlagFixedNewstyle | NBD.clientFlagNoZeroes
            guard flags & ~known == 0 else {
                state = .finished
                return .sendAndClose(ByteBuffer(), reason: "client sent unknown handshake flags 0x\(String(flags, radix: 16))")
            }
            noZeroes = flags & NBD.clientFlagNoZeroes != 0
            state = .awaitingOption
            return .send(ByteBuffer())
        case .awaitingOption:
            return processOption(&input)
        }
    }

    private mutating func processOption(_ input: inout ByteBuffer) -> Action? {
        guard input.readableBytes >= 16 else { return nil }
        let start = input.readerIndex
        let magic = input.getInteger(at: start, as: UInt64.self)!
        let rawOption = input.getInteger(at: start + 8, as: UInt32.self)!
        let length = input.getInteger(at: start + 12, as: UInt32.self)!
        guard magic == NBD.optionMagic else {
            state = .finished
            return .sendAndClose(ByteBuffer(), reason: "bad option magic 0x\(String(magic, radix: 16))")
        }
        guard length <= NBDLimits.maximumOptionLength else {
            state = .finished
            return .sendAndClose(
                ByteBuffer(),
                reason: "option \(rawOption) claims \(length) bytes of data, more than the \(NBDLimits.maximumOptionLength) allowed")
        }
        guard input.readableBytes >= 16 + Int(length) else { return nil }
        input.moveReaderIndex(forwardBy: 16)
        var data = input.readSlice(length: Int(length))!

        if tls == .require, !tlsActive, rawOption != NBD.Option.startTLS.rawValue, rawOption != NBD.Option.abort.rawValue {
            // The spec's forced-TLS mode: nothing is said about the exports before TLS.
            // NBD_OPT_EXPORT_NAME has no error reply: the connection is closed.
            if rawOption == NBD.Option.exportName.rawValue {
                state = .finished
                return .sendAndClose(ByteBuffer(), reason: "client asked for an export without TLS, which this server requires (nbd-tls require)")
            }
            return .send(Self.reply(rawOption, .errTLSRequired, message: "TLS is required: upgrade with NBD_OPT_STARTTLS first"))
        }
        guard let option = NBD.Option(rawValue: rawOption) else {
            return .send(Self.reply(rawOption, .errUnsupported, message: "option \(rawOption) is not supported"))
        }
        switch option {
        case .exportName:
            let name = data.readString(length: data.readableBytes) ?? ""
            guard let export = export(named: name) else {
                state = .finished
                return .sendAndClose(ByteBuffer(), reason: "client asked for unknown export '\(name)'")
            }
            var out = ByteBuffer()
            out.writeInteger(export.size)
            out.writeInteger(advertisedFlags(export).rawValue)
            if !noZeroes { out.writeRepeatingByte(0, count: 124) }
            state = .finished
            return .transmit(out, session(for: export))
        case .abort:
            state = .finished
            return .sendAndClose(Self.reply(rawOption, .ack), reason: "client aborted negotiation")
        case .list:
            guard length == 0 else {
                return .send(Self.reply(rawOption, .errInvalid, message: "NBD_OPT_LIST takes no data"))
            }
            var out = ByteBuffer()
            for export in exports {
                var payload = ByteBuffer()
                payload.writeInteger(UInt32(export.name.utf8.count))
                payload.writeString(export.name)
                payload.writeString(export.description)
                out.writeImmutableBuffer(Self.reply(rawOption, .server, payload: payload))
            }
            out.writeImmutableBuffer(Self.reply(rawOption, .ack))
            return .send(out)
        case .info, .go:
            return infoOrGo(option, data: &data)
        case .structuredReply:
            guard length == 0 else {
                return .send(Self.reply(rawOption, .errInvalid, message: "NBD_OPT_STRUCTURED_REPLY takes no data"))
            }
            structuredReplies = true
            return .send(Self.reply(rawOption, .ack))
        case .listMetaContext, .setMetaContext:
            return metaContext(option, data: &data)
        case .startTLS:
            guard tls != .off else {
                return .send(Self.reply(rawOption, .errUnsupported, message: "TLS is not enabled on this export (nbd-tls off)"))
            }
            guard length == 0 else {
                return .send(Self.reply(rawOption, .errInvalid, message: "NBD_OPT_STARTTLS takes no data"))
            }
            guard !tlsActive else {
                return .send(Self.reply(rawOption, .errInvalid, message: "TLS is already active"))
            }
            tlsActive = true
            // Nothing negotiated in clear carries over into TLS.
            structuredReplies = false
            metaContexts = [:]
            return .startTLS(Self.reply(rawOption, .ack))
        case .peekExport, .extendedHeaders:
            return .send(Self.reply(rawOption, .errUnsupported, message: "option \(rawOption) is not supported"))
        }
    }

    private func session(for export: NBDExportInfo) -> NBDSession {
        NBDSession(export: export, structuredReplies: structuredReplies, metaContexts: structuredReplies ? metaContexts : [:])
    }

    private mutating func infoOrGo(_ option: NBD.Option, data: inout ByteBuffer) -> Action {
        let raw = option.rawValue
        guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= NBDLimits.maximumStringLength,
              let name = data.readString(length: Int(nameLength)),
              let count = data.readInteger(as: UInt16.self),
              data.readableBytes == Int(count) * 2
        else {
            return .send(Self.reply(raw, .errInvalid, message: "malformed NBD_OPT_INFO/NBD_OPT_GO request"))
        }
        var requested: [UInt16] = []
        for _ in 0..<count { requested.append(data.readInteger(as: UInt16.self)!) }
        guard let export = export(named: name) else {
            return .send(Self.reply(raw, .errUnknown, message: "no export named '\(name)'"))
        }
        var out = ByteBuffer()
        var info = ByteBuffer()
        info.writeInteger(NBD.Info.export.rawValue)
        info.writeInteger(export.size)
        info.writeInteger(advertisedFlags(export).rawValue)
        out.writeImmutableBuffer(Self.reply(raw, .info, payload: info))
        if requested.contains(NBD.Info.name.rawValue) {
            var p = ByteBuffer()
            p.writeInteger(NBD.Info.name.rawValue)
            p.writeString(export.name)
            out.writeImmutableBuffer(Self.reply(raw, .info, payload: p))
        }
        if requested.contains(NBD.Info.description.rawValue) {
            var p = ByteBuffer()
            p.writeInteger(NBD.Info.description.rawValue)
            p.writeString(export.description)
            out.writeImmutableBuffer(Self.reply(raw, .info, payload: p))
        }
        // The protocol lets a server send block sizes whether or not they were requested.
        var sizes = ByteBuffer()
        sizes.writeInteger(NBD.Info.blockSize.rawValue)
        sizes.writeInteger(export.minimumBlockSize)
        sizes.writeInteger(export.preferredBlockSize)
        sizes.writeInteger(export.maximumBlockSize)
        out.writeImmutableBuffer(Self.reply(raw, .info, payload: sizes))
        out.writeImmutableBuffer(Self.reply(raw, .ack))
        if option == .go {
            state = .finished
            return .transmit(out, session(for: export))
        }
        return .send(out)
    }

    private mutating func metaContext(_ option: NBD.Option, data: inout ByteBuffer) -> Action {
        let raw = option.rawValue
        let isSet = option == .setMetaContext
        guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= NBDLimits.maximumStringLength,
              let name = data.readString(length: Int(nameLength)),
              let count = data.readInteger(as: UInt32.self)
        else {
            return .send(Self.reply(raw, .errInvalid, message: "malformed meta context request"))
        }
        var queries: [String] = []
        for _ in 0..<count {
            guard let length = data.readInteger(as: UInt32.self), length <= NBDLimits.maximumStringLength,
                  let query = data.readString(length: Int(length))
            else {
                return .send(Self.reply(raw, .errInvalid, message: "malformed meta context query"))
            }
            queries.append(query)
        }
        guard data.readableBytes == 0 else {
            return .send(Self.reply(raw, .errInvalid, message: "trailing bytes after meta context queries"))
        }
        if isSet && !structuredReplies {
            return .send(Self.reply(raw, .errInvalid, message: "NBD_OPT_SET_META_CONTEXT needs structured replies first"))
        }
        guard export(named: name) != nil else {
            return .send(Self.reply(raw, .errUnknown, message: "no export named '\(name)'"))
        }
        var matched = false
        if queries.isEmpty {
            matched = !isSet   // LIST with no query lists everything; SET with none selects nothing
        } else {
            for query in queries {
                if query == NBD.baseAllocation || (!isSet && query == "base:") { matched = true }
            }
        }
        var out = ByteBuffer()
        if isSet { metaContexts = [:] }
        if matched {
            var p = ByteBuffer()
            p.writeInteger(isSet ? NBD.baseAllocationID : 0)
            p.writeString(NBD.baseAllocation)
            out.writeImmutableBuffer(Self.reply(raw, .metaContext, payload: p))
            if isSet { metaContexts[NBD.baseAllocationID] = NBD.baseAllocation }
        }
        out.writeImmutableBuffer(Self.reply(raw, .ack))
        return .send(out)
    }

    /// An option reply: magic, option, reply type, length, payload.
    static func reply(_ option: UInt32, _ type: NBD.OptionReply, payload: ByteBuffer = ByteBuffer()) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(20 + payload.readableBytes)
        out.writeInteger(NBD.optionReplyMagic)
        out.writeInteger(option)
        out.writeInteger(type.rawValue)
        out.writeInteger(UInt32(payload.readableBytes))
        out.writeImmutableBuffer(payload)
        return out
    }

    static func reply(_ option: UInt32, _ type: NBD.OptionReply, message: String) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeString(message)
        return reply(option, type, payload: payload)
    }
}
