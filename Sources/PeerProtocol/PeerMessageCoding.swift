import NIOCore
import RepdCore

extension PeerMessage {
    /// Writes the whole frame, header and payload. Bulk bytes (write data, sync data, bitmap pages)
    /// are copied into `buffer`; `encodeHeaderAndFixedPart` avoids that copy.
    public func encode(into buffer: inout ByteBuffer) {
        if var bulk = encodeHeaderAndFixedPart(into: &buffer) {
            buffer.writeBuffer(&bulk)
        }
    }

    /// Writes the header and the fixed fields of the payload. The header's length covers the bulk
    /// bytes too, which are returned for the caller to write right after (nil if the message has none).
    public func encodeHeaderAndFixedPart(into buffer: inout ByteBuffer) -> ByteBuffer? {
        let start = buffer.writerIndex
        buffer.writeInteger(PeerWire.magic)
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt32(0))   // length, set below
        var bulk: ByteBuffer? = nil
        switch self {
        case .hello(let hello):
            buffer.writeInteger(hello.versionMin)
            buffer.writeInteger(hello.versionMax)
            buffer.writeInteger(hello.features)
            buffer.writeInteger(hello.nonce)
            buffer.writeInteger(UInt8(hello.authRequired ? 1 : 0))
            buffer.writePeerString(hello.resource)
            buffer.writePeerString(hello.node)
            buffer.writePeerString(hello.peer)
        case .authChallenge(let algorithm, let challenge):
            buffer.writePeerString(algorithm)
            buffer.writePeerBytes(challenge)
        case .authResponse(let mac):
            buffer.writePeerBytes(mac)
        case .authResult(let accepted, let reason):
            buffer.writeInteger(UInt8(accepted ? 1 : 0))
            buffer.writePeerString(reason)
        case .chosen, .ping, .pingAck:
            break
        case .state(let report):
            buffer.writeInteger(PeerWire.code(for: report.role))
            buffer.writeInteger(PeerWire.code(for: report.disk))
            buffer.writeInteger(report.replicationProtocol)
            buffer.writeInteger(UInt8(report.allowTwoPrimaries ? 1 : 0))
            buffer.writeInteger(report.flags.rawValue)
            buffer.writeInteger(report.usableSize)
            buffer.writeInteger(report.generation.current)
            buffer.writeInteger(report.generation.bitmap)
            let history = report.generation.history
            buffer.writeInteger(history.count > 0 ? history[0] : 0)
            buffer.writeInteger(history.count > 1 ? history[1] : 0)
            buffer.writeInteger(report.outOfSyncBlocks)
        case .write(let write):
            buffer.writeInteger(write.sequence)
            buffer.writeInteger(write.offset)
            buffer.writeInteger(write.length)
            buffer.writeInteger(write.kind.rawValue)
            var flags: UInt8 = 0
            if write.fua { flags |= PeerWire.writeFlagFUA }
            if write.noHole { flags |= PeerWire.writeFlagNoHole }
            if write.digest != nil && write.kind == .data { flags |= PeerWire.writeFlagDigest }
            buffer.writeInteger(flags)
            if let digest = write.digest, write.kind == .data {
                buffer.writeInteger(digest.algorithm)
                buffer.writeInteger(UInt8(digest.bytes.count))
                buffer.writeBytes(digest.bytes)
            }
            if write.kind == .data {
                assert(write.payload?.readableBytes == Int(write.length), "a data write's payload must be `length` bytes")
                bulk = write.payload
            } else {
                assert(write.payload == nil, "only a data write carries a payload")
            }
        case .writeAck(let sequence, let status), .flushAck(let sequence, let status):
            buffer.writeInteger(sequence)
            buffer.writeInteger(status)
        case .receiveAck(let sequence), .flush(let sequence):
            buffer.writeInteger(sequence)
        case .bitmapPage(let index, let bytes):
            assert(bytes.readableBytes == PeerWire.bitmapPageSize, "a bitmap page is 4096 bytes")
            buffer.writeInteger(index)
            bulk = bytes
        case .bitmapDone(let pages):
            buffer.writeInteger(pages)
        case .syncStart(let sourceIsSender, let totalBlocks, let full):
            buffer.writeInteger(totalBlocks)
            buffer.writeInteger(UInt8(sourceIsSender ? 1 : 0))
            buffer.writeInteger(UInt8(full ? 1 : 0))
        case .syncData(let offset, let payload):
            buffer.writeInteger(offset)
            bulk = payload
        case .syncAck(let offset, let length, let status):
            buffer.writeInteger(offset)
            buffer.writeInteger(length)
            buffer.writeInteger(status)
        case .syncDone(let blocks):
            buffer.writeInteger(blocks)
        case .checksumRequest(let offset, let length, let algorithm):
            buffer.writeInteger(offset)
            buffer.writeInteger(length)
            buffer.writePeerString(algorithm)
        case .checksumReply(let offset, let length, let digest):
            buffer.writeInteger(offset)
            buffer.writeInteger(length)
            buffer.writePeerBytes(digest)
        case .syncPause(let paused):
            buffer.writeInteger(UInt8(paused ? 1 : 0))
        case .resyncRequest(let senderIsSource, let full):
            buffer.writeInteger(UInt8(senderIsSource ? 1 : 0))
            buffer.writeInteger(UInt8(full ? 1 : 0))
        case .verifyNotice(let running, let blocks):
            buffer.writeInteger(UInt8(running ? 1 : 0))
            buffer.writeInteger(blocks)
        case .dataRequest(let id, let offset, let length):
            buffer.writeInteger(id)
            buffer.writeInteger(offset)
            buffer.writeInteger(length)
        case .dataReply(let id, let status, let payload):
            buffer.writeInteger(id)
            buffer.writeInteger(status)
            bulk = payload
        case .roleRequest(let primary):
            buffer.writeInteger(UInt8(primary ? 1 : 0))
        case .roleReply(let granted, let reason):
            buffer.writeInteger(UInt8(granted ? 1 : 0))
            buffer.writePeerString(reason)
        case .fenceRequest(let action):
            buffer.writeInteger(action)
        case .fenceReply(let code, let reason):
            buffer.writeInteger(code)
            buffer.writePeerString(reason)
        case .error(let reason):
            buffer.writePeerString(reason)
        }
        let length = buffer.writerIndex - start - PeerWire.headerSize + (bulk?.readableBytes ?? 0)
        buffer.setInteger(UInt32(truncatingIfNeeded: length), at: start + 8)
        return bulk
    }

    /// Decodes one payload. Checks the header fields too (known type, flags 0, length within the
    /// type's limit), so it can be used without `PeerFrameDecoder`. Bulk bytes are slices of `payload`.
    public static func decode(type rawType: UInt16, flags: UInt16, payload: ByteBuffer) throws(PeerProtocolError) -> PeerMessage {
        let type = try PeerWire.checkHeader(type: rawType, flags: flags, length: UInt64(payload.readableBytes))
        var reader = PayloadReader(buffer: payload, type: type)
        let message: PeerMessage
        switch type {
        case .hello:
            let versionMin = try reader.integer(UInt16.self, "versionMin")
            let versionMax = try reader.integer(UInt16.self, "versionMax")
            let features = try reader.integer(UInt32.self, "features")
            let nonce = try reader.integer(UInt64.self, "nonce")
            let authRequired = try reader.bool("authRequired")
            let resource = try reader.string("resource")
            let node = try reader.string("node")
            let peer = try reader.string("peer")
            // Later versions may append fields to hello; version 1 ignores them.
            reader.skipRest()
            message = .hello(PeerHello(
                versionMin: versionMin, versionMax: versionMax, features: features,
                resource: resource, node: node, peer: peer, nonce: nonce, authRequired: authRequired))
        case .authChallenge:
            let algorithm = try reader.string("algorithm")
            let challenge = try reader.bytes("challenge", allowed: PeerWire.challengeLengths)
            message = .authChallenge(algorithm: algorithm, challenge: challenge)
        case .authResponse:
            message = .authResponse(mac: try reader.bytes("mac", allowed: 0...PeerWire.maximumDigestLength))
        case .authResult:
            let accepted = try reader.bool("accepted")
            message = .authResult(accepted: accepted, reason: try reader.string("reason"))
        case .chosen:
            message = .chosen
        case .state:
            let roleCode = try reader.integer(UInt8.self, "role")
            guard let role = PeerWire.role(code: roleCode) else { throw reader.malformed("unknown role \(roleCode)") }
            let diskCode = try reader.integer(UInt8.self, "disk")
            guard let disk = PeerWire.disk(code: diskCode) else { throw reader.malformed("unknown disk state \(diskCode)") }
            let replicationProtocol = try reader.integer(UInt8.self, "replicationProtocol")
            guard (UInt8(ascii: "A")...UInt8(ascii: "C")).contains(replicationProtocol) else {
                throw reader.malformed("replication protocol must be 'A', 'B' or 'C', got 0x\(hex(replicationProtocol, digits: 2))")
            }
            let allowTwoPrimaries = try reader.bool("allowTwoPrimaries")
            let flags = PeerStateReport.Flags(rawValue: try reader.integer(UInt32.self, "flags"))
            guard flags.isSubset(of: .known) else {
                throw reader.malformed("unknown state flags 0x\(hex(flags.subtracting(.known).rawValue, digits: 8))")
            }
            let usableSize = try reader.integer(UInt64.self, "usableSize")
            let current = try reader.integer(UInt64.self, "generation.current")
            let bitmap = try reader.integer(UInt64.self, "generation.bitmap")
            let history0 = try reader.integer(UInt64.self, "generation.history[0]")
            let history1 = try reader.integer(UInt64.self, "generation.history[1]")
            let outOfSync = try reader.integer(UInt64.self, "outOfSyncBlocks")
            message = .state(PeerStateReport(
                role: role, disk: disk, usableSize: usableSize,
                generation: GenerationIdentifiers(current: current, bitmap: bitmap, history: [history0, history1]),
                outOfSyncBlocks: outOfSync, flags: flags, replicationProtocol: replicationProtocol,
                allowTwoPrimaries: allowTwoPrimaries))
        case .write:
            let sequence = try reader.integer(UInt64.self, "sequence")
            let offset = try reader.integer(UInt64.self, "offset")
            let length = try reader.integer(UInt32.self, "length")
            let kindCode = try reader.integer(UInt8.self, "kind")
            guard let kind = PeerWrite.Kind(rawValue: kindCode) else { throw reader.malformed("unknown write kind \(kindCode)") }
            let flags = try reader.integer(UInt8.self, "flags")
            let known = PeerWire.writeFlagFUA | PeerWire.writeFlagNoHole | PeerWire.writeFlagDigest
            guard flags & ~known == 0 else { throw reader.malformed("unknown write flags 0x\(hex(flags & ~known, digits: 2))") }
            var digest: PeerDigest?
            if flags & PeerWire.writeFlagDigest != 0 {
                guard kind == .data else { throw reader.malformed("a write of kind \(kind) carries a digest") }
                let code = try reader.integer(UInt8.self, "digest algorithm")
                let count = try reader.integer(UInt8.self, "digest length")
                guard let known = PeerDigest.algorithms[code] else { throw reader.malformed("unknown digest algorithm \(code)") }
                guard Int(count) == known.length else {
                    throw reader.malformed("a \(known.name) digest is \(known.length) bytes, not \(count)")
                }
                guard let bytes = reader.buffer.readBytes(length: Int(count)) else {
                    throw reader.malformed("truncated in the digest: \(count) bytes needed, \(reader.remaining) left")
                }
                digest = PeerDigest(algorithm: code, bytes: bytes)
            }
            var payload: ByteBuffer? = nil
            if kind == .data {
                guard reader.remaining == Int(length) else {
                    throw reader.malformed("write of kind data has length \(length) but carries \(reader.remaining) bytes of data")
                }
                payload = reader.rest()
            } else if reader.remaining != 0 {
                throw reader.malformed("write of kind \(kind) carries \(reader.remaining) bytes of data, it must carry none")
            }
            var write = PeerWrite(
                sequence: sequence, offset: offset, length: length, kind: kind,
                fua: flags & PeerWire.writeFlagFUA != 0, noHole: flags & PeerWire.writeFlagNoHole != 0, payload: payload)
            write.digest = digest
            message = .write(write)
        case .writeAck:
            let sequence = try reader.integer(UInt64.self, "sequence")
            message = .writeAck(sequence: sequence, status: try reader.integer(UInt32.self, "status"))
        case .receiveAck:
            message = .receiveAck(sequence: try reader.integer(UInt64.self, "sequence"))
        case .flush:
            message = .flush(sequence: try reader.integer(UInt64.self, "sequence"))
        case .flushAck:
            let sequence = try reader.integer(UInt64.self, "sequence")
            message = .flushAck(sequence: sequence, status: try reader.integer(UInt32.self, "status"))
        case .ping:
            message = .ping
        case .pingAck:
            message = .pingAck
        case .bitmapPage:
            let index = try reader.integer(UInt32.self, "index")
            guard reader.remaining == PeerWire.bitmapPageSize else {
                throw reader.malformed("bitmap page carries \(reader.remaining) bytes, it must be exactly \(PeerWire.bitmapPageSize)")
            }
            message = .bitmapPage(index: index, bytes: reader.rest())
        case .bitmapDone:
            message = .bitmapDone(pages: try reader.integer(UInt32.self, "pages"))
        case .syncStart:
            let totalBlocks = try reader.integer(UInt64.self, "totalBlocks")
            let sourceIsSender = try reader.bool("sourceIsSender")
            message = .syncStart(sourceIsSender: sourceIsSender, totalBlocks: totalBlocks, full: try reader.bool("full"))
        case .syncData:
            let offset = try reader.integer(UInt64.self, "offset")
            message = .syncData(offset: offset, payload: reader.rest())
        case .syncAck:
            let offset = try reader.integer(UInt64.self, "offset")
            let length = try reader.integer(UInt32.self, "length")
            message = .syncAck(offset: offset, length: length, status: try reader.integer(UInt32.self, "status"))
        case .syncDone:
            message = .syncDone(blocks: try reader.integer(UInt64.self, "blocks"))
        case .checksumRequest:
            let offset = try reader.integer(UInt64.self, "offset")
            let length = try reader.integer(UInt32.self, "length")
            message = .checksumRequest(offset: offset, length: length, algorithm: try reader.string("algorithm"))
        case .checksumReply:
            let offset = try reader.integer(UInt64.self, "offset")
            let length = try reader.integer(UInt32.self, "length")
            let digest = try reader.bytes("digest", allowed: 0...PeerWire.maximumDigestLength)
            message = .checksumReply(offset: offset, length: length, digest: digest)
        case .syncPause:
            message = .syncPause(paused: try reader.bool("paused"))
        case .resyncRequest:
            let senderIsSource = try reader.bool("senderIsSource")
            message = .resyncRequest(senderIsSource: senderIsSource, full: try reader.bool("full"))
        case .verifyNotice:
            let running = try reader.bool("running")
            message = .verifyNotice(running: running, blocks: try reader.integer(UInt64.self, "blocks"))
        case .dataRequest:
            let id = try reader.integer(UInt64.self, "id")
            let offset = try reader.integer(UInt64.self, "offset")
            message = .dataRequest(id: id, offset: offset, length: try reader.integer(UInt32.self, "length"))
        case .dataReply:
            let id = try reader.integer(UInt64.self, "id")
            let status = try reader.integer(UInt32.self, "status")
            message = .dataReply(id: id, status: status, payload: reader.rest())
        case .roleRequest:
            message = .roleRequest(primary: try reader.bool("primary"))
        case .roleReply:
            let granted = try reader.bool("granted")
            message = .roleReply(granted: granted, reason: try reader.string("reason"))
        case .fenceRequest:
            let action = try reader.integer(UInt8.self, "action")
            guard action == FenceAction.outdate else { throw reader.malformed("unknown fence action \(action)") }
            message = .fenceRequest(action: action)
        case .fenceReply:
            let code = try reader.integer(UInt8.self, "code")
            message = .fenceReply(code: code, reason: try reader.string("reason"))
        case .error:
            message = .error(reason: try reader.string("reason"))
        }
        try reader.finish()
        return message
    }
}

extension PeerWire {
    static let writeFlagFUA: UInt8 = 1 << 0
    static let writeFlagNoHole: UInt8 = 1 << 1
    /// A digest of the data follows the flags (`data-integrity-alg`).
    static let writeFlagDigest: UInt8 = 1 << 2

    /// The header checks shared by the frame decoder (before the payload arrives) and `decode`.
    static func checkHeader(type rawType: UInt16, flags: UInt16, length: UInt64) throws(PeerProtocolError) -> PeerMessageType {
        guard let type = PeerMessageType(rawValue: rawType) else { throw .unknownType(rawType) }
        guard flags == 0 else { throw .malformed(type: rawType, reason: "frame flags must be 0, got 0x\(hex(flags, digits: 4))") }
        guard length <= UInt64(type.maximumPayload) else {
            throw .oversized(type: rawType, length: UInt32(truncatingIfNeeded: length))
        }
        return type
    }

    /// Role on the wire: 0 Unknown, 1 Primary, 2 Secondary.
    static func code(for role: Role) -> UInt8 {
        switch role {
        case .unknown: 0
        case .primary: 1
        case .secondary: 2
        }
    }

    static func role(code: UInt8) -> Role? {
        switch code {
        case 0: .unknown
        case 1: .primary
        case 2: .secondary
        default: nil
        }
    }

    /// Disk state on the wire, in RepdCore's order of increasing trust.
    static let diskCodes: [DiskState] = [
        .diskless, .attaching, .failed, .negotiating, .inconsistent, .outdated, .unknown, .consistent, .upToDate,
    ]

    static func code(for disk: DiskState) -> UInt8 {
        UInt8(diskCodes.firstIndex(of: disk)!)
    }

    static func disk(code: UInt8) -> DiskState? {
        Int(code) < diskCodes.count ? diskCodes[Int(code)] : nil
    }
}

extension ByteBuffer {
    /// u16 length + UTF-8, cut to 255 bytes on a character boundary.
    mutating func writePeerString(_ string: String) {
        var utf8 = Array(string.utf8)
        if utf8.count > PeerWire.maximumStringLength {
            var cut = PeerWire.maximumStringLength
            while cut > 0 && utf8[cut] & 0xC0 == 0x80 { cut -= 1 }   // don't split a scalar
            utf8.removeSubrange(cut...)
        }
        writeInteger(UInt16(utf8.count))
        writeBytes(utf8)
    }

    /// u16 length + bytes.
    mutating func writePeerBytes(_ bytes: [UInt8]) {
        writeInteger(UInt16(truncatingIfNeeded: bytes.count))
        writeBytes(bytes)
    }
}

/// Reads the fields of one payload, turning every shortfall into a precise `malformed` error.
struct PayloadReader {
    var buffer: ByteBuffer
    let type: PeerMessageType

    var remaining: Int { buffer.readableBytes }

    func malformed(_ reason: String) -> PeerProtocolError {
        .malformed(type: type.rawValue, reason: reason)
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(PeerProtocolError) -> T {
        guard let value = buffer.readInteger(as: T.self) else {
            throw malformed("truncated at \(field): \(MemoryLayout<T>.size) bytes needed, \(remaining) left")
        }
        return value
    }

    mutating func bool(_ field: String) throws(PeerProtocolError) -> Bool {
        let value = try integer(UInt8.self, field)
        guard value <= 1 else { throw malformed("\(field) must be 0 or 1, got \(value)") }
        return value == 1
    }

    mutating func string(_ field: String) throws(PeerProtocolError) -> String {
        let length = Int(try integer(UInt16.self, "length of \(field)"))
        guard length <= PeerWire.maximumStringLength else {
            throw malformed("\(field) is \(length) bytes long, more than the \(PeerWire.maximumStringLength) allowed")
        }
        guard let bytes = buffer.readBytes(length: length) else {
            throw malformed("\(field) claims \(length) bytes but only \(remaining) remain")
        }
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw malformed("\(field) is not valid UTF-8")
        }
        return string
    }

    mutating func bytes(_ field: String, allowed: ClosedRange<Int>) throws(PeerProtocolError) -> [UInt8] {
        let length = Int(try integer(UInt16.self, "length of \(field)"))
        guard allowed.contains(length) else {
            let bounds = allowed.lowerBound == 0 ? "at most \(allowed.upperBound)" : "\(allowed.lowerBound) to \(allowed.upperBound)"
            throw malformed("\(field) is \(length) bytes, it must be \(bounds)")
        }
        guard let bytes = buffer.readBytes(length: length) else {
            throw malformed("\(field) claims \(length) bytes but only \(remaining) remain")
        }
        return bytes
    }

    /// The rest of the payload, as a slice (no copy).
    mutating func rest() -> ByteBuffer {
        buffer.readSlice(length: buffer.readableBytes)!
    }

    mutating func skipRest() {
        buffer.moveReaderIndex(to: buffer.writerIndex)
    }

    func finish() throws(PeerProtocolError) {
        guard remaining == 0 else { throw malformed("\(remaining) trailing byte\(remaining == 1 ? "" : "s") after the last field") }
    }
}
