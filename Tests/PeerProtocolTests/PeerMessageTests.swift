import NIOCore
import PeerProtocol
import RepdCore
import XCTest

final class PeerMessageTests: XCTestCase {
    func decodeFrame(_ frame: ByteBuffer) throws -> PeerMessage {
        var input = frame
        var decoder = PeerFrameDecoder()
        let message = try XCTUnwrap(try decoder.decode(buffer: &input))
        XCTAssertEqual(input.readableBytes, 0)
        return message
    }

    func testSamplesCoverEveryType() {
        XCTAssertEqual(Set(Samples.all.map(\.type)), Set(PeerMessageType.allCases))
    }

    func testRoundTripEveryMessage() throws {
        for message in Samples.all {
            let frame = Samples.encoded(message)
            XCTAssertEqual(frame.getInteger(at: 0, as: UInt32.self), PeerWire.magic, "\(message.type)")
            XCTAssertEqual(frame.getInteger(at: 4, as: UInt16.self), message.type.rawValue, "\(message.type)")
            XCTAssertEqual(frame.getInteger(at: 6, as: UInt16.self), 0, "\(message.type)")
            XCTAssertEqual(Int(frame.getInteger(at: 8, as: UInt32.self)!), frame.readableBytes - 12, "\(message.type)")
            XCTAssertEqual(try decodeFrame(frame), message, "\(message.type)")
            XCTAssertEqual(
                try PeerMessage.decode(type: message.type.rawValue, flags: 0, payload: frame.getSlice(at: 12, length: frame.readableBytes - 12)!),
                message)
        }
    }

    func testHeaderAndFixedPartPlusBulkEqualsWholeFrame() {
        for message in Samples.all {
            var split = ByteBuffer()
            let bulk = message.encodeHeaderAndFixedPart(into: &split)
            switch message.type {
            case .write:
                if case .write(let write) = message, write.kind == .data {
                    XCTAssertEqual(bulk, write.payload)
                } else {
                    XCTAssertNil(bulk)
                }
            case .syncData, .bitmapPage, .dataReply:
                XCTAssertNotNil(bulk, "\(message.type)")
            default:
                XCTAssertNil(bulk, "\(message.type)")
            }
            if let bulk { split.writeImmutableBuffer(bulk) }
            XCTAssertEqual(split, Samples.encoded(message), "\(message.type)")
        }
    }

    func testEncodeAppendsAfterExistingBytes() throws {
        var buffer = ByteBuffer(bytes: [0xEE, 0xEE])
        PeerMessage.writeAck(sequence: 1, status: 2).encode(into: &buffer)
        XCTAssertEqual(buffer.readBytes(length: 2), [0xEE, 0xEE])
        XCTAssertEqual(try decodeFrame(buffer), .writeAck(sequence: 1, status: 2))
    }

    // MARK: byte layouts (kept in step with Docs/WireProtocol.md)

    func testHelloBytes() {
        let expected: [UInt8] =
            [0x52, 0x50, 0x44, 0x31, 0x00, 0x01, 0x00, 0x00] + .be(UInt32(17 + 4 + 7 + 6))
            + [0x00, 0x01, 0x00, 0x03] + [0x00, 0x00, 0x00, 0xA5] + [1, 2, 3, 4, 5, 6, 7, 8] + [0x01]
            + .string("r0") + .string("alpha") + .string("beta")
        XCTAssertEqual(Array(Samples.encoded(.hello(Samples.hello)).readableBytesView), expected)
    }

    /// The hex dumps printed in Docs/WireProtocol.md, verbatim.
    func testDocumentedExamples() throws {
        func bytes(_ hex: String) -> [UInt8] {
            hex.split(separator: " ").map { UInt8($0, radix: 16)! }
        }
        let hello = PeerMessage.hello(PeerHello(
            resource: "r0", node: "alpha", peer: "beta", nonce: 0x0102_0304_0506_0708, authRequired: true))
        let helloHex = """
            52 50 44 31 00 01 00 00 00 00 00 22 00 01 00 01 00 00 00 00 01 02 03 04 05 06 07 08 01 00 02 72 30             00 05 61 6C 70 68 61 00 04 62 65 74 61
            """
        XCTAssertEqual(Array(Samples.encoded(hello).readableBytesView), bytes(helloHex))

        let write = PeerMessage.write(PeerWrite(sequence: 5, offset: 0x1000, data: ByteBuffer(bytes: [0xAB, 0xCD]), fua: true))
        let writeHex = """
            52 50 44 31 00 20 00 00 00 00 00 18 00 00 00 00 00 00 00 05 00 00 00 00 00 00 10 00 00 00 00 02 00 01             AB CD
            """
        XCTAssertEqual(Array(Samples.encoded(write).readableBytesView), bytes(writeHex))

        let ack = PeerMessage.writeAck(sequence: 5, status: 0)
        XCTAssertEqual(
            Array(Samples.encoded(ack).readableBytesView),
            bytes("52 50 44 31 00 21 00 00 00 00 00 0C 00 00 00 00 00 00 00 05 00 00 00 00"))
        XCTAssertEqual(Array(Samples.encoded(.ping).readableBytesView), bytes("52 50 44 31 00 30 00 00 00 00 00 00"))
    }

    func testStateBytes() {
        let expected: [UInt8] =
            [0x52, 0x50, 0x44, 0x31, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 56]
            + [1, 8, 0x42, 1] + .be(UInt32(12)) + .be(UInt64(1 << 30))
            + .be(UInt64(0x1111)) + .be(UInt64(0x2222)) + .be(UInt64(0x3333)) + .be(UInt64(0x4444)) + .be(UInt64(77))
        XCTAssertEqual(Array(Samples.encoded(.state(Samples.state)).readableBytesView), expected)
    }

    func testWriteBytes() {
        let write = PeerWrite(sequence: 5, offset: 0x1000, data: ByteBuffer(bytes: [0xAB, 0xCD]), fua: true)
        let expected: [UInt8] =
            [0x52, 0x50, 0x44, 0x31, 0x00, 0x20, 0x00, 0x00] + .be(UInt32(24))
            + .be(UInt64(5)) + .be(UInt64(0x1000)) + .be(UInt32(2)) + [0, 0x01] + [0xAB, 0xCD]
        XCTAssertEqual(Array(Samples.encoded(.write(write)).readableBytesView), expected)
        let zeroes = PeerWrite(sequence: 6, offset: 0, length: 4096, kind: .zeroes, noHole: true)
        XCTAssertEqual(
            Array(Samples.encoded(.write(zeroes)).readableBytesView.dropFirst(12)),
            .be(UInt64(6)) + .be(UInt64(0)) + .be(UInt32(4096)) + [2, 0x02])
    }

    func testSmallMessageBytes() {
        let cases: [(PeerMessage, [UInt8])] = [
            (.authChallenge(algorithm: "sha1", challenge: Array(repeating: 9, count: 32)),
             .string("sha1") + .be(UInt16(32)) + Array(repeating: 9, count: 32)),
            (.authResponse(mac: [1, 2]), .be(UInt16(2)) + [1, 2]),
            (.authResult(accepted: false, reason: "x"), [0] + .string("x")),
            (.chosen, []),
            (.writeAck(sequence: 3, status: 5), .be(UInt64(3)) + .be(UInt32(5))),
            (.receiveAck(sequence: 3), .be(UInt64(3))),
            (.flush(sequence: 4), .be(UInt64(4))),
            (.flushAck(sequence: 4, status: 0), .be(UInt64(4)) + .be(UInt32(0))),
            (.ping, []),
            (.pingAck, []),
            (.bitmapDone(pages: 2), .be(UInt32(2))),
            (.syncStart(sourceIsSender: true, totalBlocks: 10, full: false), .be(UInt64(10)) + [1, 0]),
            (.syncData(offset: 8, payload: ByteBuffer(bytes: [7])), .be(UInt64(8)) + [7]),
            (.syncAck(offset: 8, length: 1, status: 0), .be(UInt64(8)) + .be(UInt32(1)) + .be(UInt32(0))),
            (.syncDone(blocks: 6), .be(UInt64(6))),
            (.syncPause(paused: true), [1]),
            (.resyncRequest(senderIsSource: false, full: true), [0, 1]),
            (.verifyNotice(running: true, blocks: 9), [1] + .be(UInt64(9))),
            (.dataRequest(id: 2, offset: 4096, length: 8192), .be(UInt64(2)) + .be(UInt64(4096)) + .be(UInt32(8192))),
            (.dataReply(id: 2, status: 0, payload: ByteBuffer(bytes: [9, 9])), .be(UInt64(2)) + .be(UInt32(0)) + [9, 9]),
            (.checksumRequest(offset: 1, length: 2, algorithm: "md5"), .be(UInt64(1)) + .be(UInt32(2)) + .string("md5")),
            (.checksumReply(offset: 1, length: 2, digest: [3]), .be(UInt64(1)) + .be(UInt32(2)) + .be(UInt16(1)) + [3]),
            (.error(reason: "bye"), .string("bye")),
        ]
        for (message, payload) in cases {
            XCTAssertEqual(
                Array(Samples.encoded(message).readableBytesView),
                [0x52, 0x50, 0x44, 0x31] + .be(message.type.rawValue) + [0, 0] + .be(UInt32(payload.count)) + payload,
                "\(message.type)")
        }
        var page = Samples.encoded(.bitmapPage(index: 1, bytes: Samples.bytes(4096)))
        XCTAssertEqual(page.readableBytes, 12 + 4 + 4096)
        page.moveReaderIndex(forwardBy: 12)
        XCTAssertEqual(page.readInteger(as: UInt32.self), 1)
    }

    func testRoleAndDiskCodes() throws {
        let roles: [(Role, UInt8)] = [(.unknown, 0), (.primary, 1), (.secondary, 2)]
        let disks: [(DiskState, UInt8)] = [
            (.diskless, 0), (.attaching, 1), (.failed, 2), (.negotiating, 3), (.inconsistent, 4), (.outdated, 5),
            (.unknown, 6), (.consistent, 7), (.upToDate, 8),
        ]
        XCTAssertEqual(disks.count, DiskState.allCases.count)
        XCTAssertEqual(roles.count, Role.allCases.count)
        for (role, roleCode) in roles {
            for (disk, diskCode) in disks {
                var report = Samples.state
                report.role = role
                report.disk = disk
                let frame = Samples.encoded(.state(report))
                XCTAssertEqual(frame.getInteger(at: 12, as: UInt8.self), roleCode)
                XCTAssertEqual(frame.getInteger(at: 13, as: UInt8.self), diskCode)
                XCTAssertEqual(try decodeFrame(frame), .state(report))
            }
        }
    }

    // MARK: strings

    func testLongStringsAreCutOnACharacterBoundary() throws {
        let reason = String(repeating: "é", count: 300)   // 600 bytes of UTF-8
        let frame = Samples.encoded(.error(reason: reason))
        XCTAssertEqual(frame.getInteger(at: 12, as: UInt16.self), 254)
        guard case .error(let decoded) = try decodeFrame(frame) else { return XCTFail() }
        XCTAssertEqual(decoded, String(repeating: "é", count: 127))

        let ascii = String(repeating: "a", count: 400)
        guard case .error(let cut) = try decodeFrame(Samples.encoded(.error(reason: ascii))) else { return XCTFail() }
        XCTAssertEqual(cut.utf8.count, 255)
    }

    func testHelloIgnoresFieldsAppendedByLaterVersions() throws {
        var frame = Samples.encoded(.hello(Samples.hello))
        frame.writeBytes([9, 9, 9, 9])
        frame.setInteger(UInt32(frame.readableBytes - 12), at: 8)
        XCTAssertEqual(try decodeFrame(frame), .hello(Samples.hello))
    }

    // MARK: bulk payloads are not copied

    func testDecodedBulkPayloadsAreSlicesOfTheReceiveBuffer() throws {
        for message in [
            PeerMessage.write(PeerWrite(sequence: 1, offset: 0, data: Samples.bytes(4096))),
            .syncData(offset: 0, payload: Samples.bytes(8192)),
            .bitmapPage(index: 0, bytes: Samples.bytes(4096)),
        ] {
            var input = Samples.encoded(message)
            let base = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) }
            let total = input.readableBytes
            var decoder = PeerFrameDecoder()
            let decoded = try XCTUnwrap(try decoder.decode(buffer: &input))
            let bulk: ByteBuffer
            switch decoded {
            case .write(let write): bulk = try XCTUnwrap(write.payload)
            case .syncData(_, let payload): bulk = payload
            case .bitmapPage(_, let bytes): bulk = bytes
            default: return XCTFail()
            }
            let address = bulk.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) }
            XCTAssertEqual(address, base + UInt(total - bulk.readableBytes), "\(message.type)")
        }
    }

    func testLargestWriteAndSyncData() throws {
        func big(_ count: Int) -> ByteBuffer {
            var buffer = ByteBuffer(repeating: 0x5A, count: count)
            buffer.setBytes([1, 2, 3], at: 0)
            buffer.setBytes([4, 5, 6], at: count - 3)
            return buffer
        }
        let write = PeerMessage.write(PeerWrite(sequence: 1, offset: 0, data: big(32 << 20)))
        XCTAssertEqual(try decodeFrame(Samples.encoded(write)), write)
        let sync = PeerMessage.syncData(offset: 0, payload: big(PeerWire.maximumPayload - 8))
        XCTAssertEqual(try decodeFrame(Samples.encoded(sync)), sync)
    }

    // MARK: malformed payloads

    func testMalformedPayloads() {
        let state: [UInt8] = [1, 8, 0x43, 0] + .be(UInt32(0)) + Array(repeating: 0, count: 48)
        func stateWith(_ index: Int, _ bytes: [UInt8]) -> [UInt8] {
            var s = state
            s.replaceSubrange(index..<(index + bytes.count), with: bytes)
            return s
        }
        let writeFixed = { (length: UInt32, kind: UInt8, flags: UInt8) -> [UInt8] in
            .be(UInt64(1)) + .be(UInt64(0)) + .be(length) + [kind, flags]
        }
        let helloFixed: [UInt8] = .be(UInt16(1)) + .be(UInt16(1)) + .be(UInt32(0)) + .be(UInt64(0))
        let cases: [(PeerMessageType, UInt16, [UInt8], String, line: UInt)] = [
            (.error, 0, [0x00], "truncated at length of reason: 2 bytes needed, 1 left", #line),
            (.error, 0, .be(UInt16(5)) + Array("ab".utf8), "reason claims 5 bytes but only 2 remain", #line),
            (.error, 0, .be(UInt16(256)) + Array(repeating: 0x61, count: 256), "reason is 256 bytes long, more than the 255 allowed", #line),
            (.error, 0, .be(UInt16(2)) + [0xC3, 0x28], "reason is not valid UTF-8", #line),
            (.hello, 0, helloFixed + [1] + .string("r0") + .be(UInt16(9)) + Array("abc".utf8), "node claims 9 bytes but only 3 remain", #line),
            (.hello, 0, helloFixed + [2] + .string("r0") + .string("a") + .string("b"), "authRequired must be 0 or 1, got 2", #line),
            (.hello, 0, Array(helloFixed.prefix(10)), "truncated at nonce: 8 bytes needed, 2 left", #line),
            (.writeAck, 0, .be(UInt64(1)) + .be(UInt32(0)) + [0], "1 trailing byte after the last field", #line),
            (.ping, 0, [0, 0], "2 trailing bytes after the last field", #line),
            (.chosen, 0, [1], "1 trailing byte after the last field", #line),
            (.writeAck, 0, [0, 0, 0, 0, 0], "truncated at sequence: 8 bytes needed, 5 left", #line),
            (.write, 0, writeFixed(8, 0, 0) + [1, 2, 3, 4], "write of kind data has length 8 but carries 4 bytes of data", #line),
            (.write, 0, writeFixed(2, 0, 0) + [1, 2, 3, 4], "write of kind data has length 2 but carries 4 bytes of data", #line),
            (.write, 0, writeFixed(4096, 1, 0) + [1, 2, 3, 4], "write of kind trim carries 4 bytes of data, it must carry none", #line),
            (.write, 0, writeFixed(4096, 7, 0), "unknown write kind 7", #line),
            (.write, 0, writeFixed(4096, 2, 0x88), "unknown write flags 0x88", #line),
            (.write, 0, Array(writeFixed(0, 0, 0).prefix(20)), "truncated at kind: 1 bytes needed, 0 left", #line),
            (.authChallenge, 0, .string("sha256") + .be(UInt16(16)) + Array(repeating: 1, count: 16), "challenge is 16 bytes, it must be 32 to 64", #line),
            (.authChallenge, 0, .string("sha256") + .be(UInt16(65)) + Array(repeating: 1, count: 65), "challenge is 65 bytes, it must be 32 to 64", #line),
            (.authChallenge, 0, .string("sha256") + .be(UInt16(40)) + Array(repeating: 1, count: 32), "challenge claims 40 bytes but only 32 remain", #line),
            (.authResponse, 0, .be(UInt16(65)) + Array(repeating: 1, count: 65), "mac is 65 bytes, it must be at most 64", #line),
            (.authResult, 0, [2] + .string(""), "accepted must be 0 or 1, got 2", #line),
            (.checksumReply, 0, .be(UInt64(0)) + .be(UInt32(0)) + .be(UInt16(80)) + Array(repeating: 0, count: 80), "digest is 80 bytes, it must be at most 64", #line),
            (.state, 0, stateWith(0, [9]), "unknown role 9", #line),
            (.state, 0, stateWith(1, [42]), "unknown disk state 42", #line),
            (.state, 0, stateWith(2, [0x44]), "replication protocol must be 'A', 'B' or 'C', got 0x44", #line),
            (.state, 0, stateWith(3, [3]), "allowTwoPrimaries must be 0 or 1, got 3", #line),
            (.state, 0, stateWith(4, .be(UInt32(0x24))), "unknown state flags 0x00000020", #line),
            (.state, 0, Array(state.prefix(50)), "truncated at outOfSyncBlocks: 8 bytes needed, 2 left", #line),
            (.bitmapPage, 0, .be(UInt32(0)) + Array(repeating: 0, count: 100), "bitmap page carries 100 bytes, it must be exactly 4096", #line),
            (.syncStart, 0, .be(UInt64(1)) + [1, 5], "full must be 0 or 1, got 5", #line),
            (.ping, 1, [], "frame flags must be 0, got 0x0001", #line),
            (.write, 0x8000, writeFixed(0, 0, 0), "frame flags must be 0, got 0x8000", #line),
        ]
        for (type, flags, payload, reason, line) in cases {
            let expected = PeerProtocolError.malformed(type: type.rawValue, reason: reason)
            XCTAssertThrowsError(try PeerMessage.decode(type: type.rawValue, flags: flags, payload: ByteBuffer(bytes: payload)), line: line) {
                XCTAssertEqual($0 as? PeerProtocolError, expected, line: line)
            }
            // The frame decoder reports the same error.
            var decoder = PeerFrameDecoder()
            var frame = Samples.frame(type: type.rawValue, flags: flags, payload: payload)
            XCTAssertThrowsError(try decoder.decode(buffer: &frame), line: line) {
                XCTAssertEqual($0 as? PeerProtocolError, expected, line: line)
            }
        }
    }

    func testDecodeChecksTypeAndLengthToo() {
        XCTAssertThrowsError(try PeerMessage.decode(type: 6, flags: 0, payload: ByteBuffer())) {
            XCTAssertEqual($0 as? PeerProtocolError, .unknownType(6))
        }
        XCTAssertThrowsError(try PeerMessage.decode(type: 48, flags: 0, payload: Samples.bytes(8193))) {
            XCTAssertEqual($0 as? PeerProtocolError, .oversized(type: 48, length: 8193))
        }
    }

    func testErrorDescriptionsAreReadable() {
        XCTAssertEqual(
            PeerProtocolError.badMagic(0x4745_5420).description,
            "bad frame magic 0x47455420, expected 0x52504431 (\"RPD1\"): the peer is not a repd node or the stream lost its framing")
        XCTAssertEqual(
            PeerProtocolError.unknownType(200).description,
            "unknown message type 200: the peer speaks a protocol this node does not know")
        XCTAssertEqual(
            PeerProtocolError.oversized(type: 32, length: 40_000_000).description,
            "write frame announces a payload of 40000000 bytes, more than the 33558528 allowed")
        XCTAssertEqual(
            PeerProtocolError.oversized(type: 48, length: 9000).description,
            "ping frame announces a payload of 9000 bytes, more than the 8192 allowed")
        XCTAssertEqual(
            PeerProtocolError.malformed(type: 16, reason: "unknown role 9").description,
            "malformed state message: unknown role 9")
        XCTAssertEqual(
            PeerProtocolError.malformed(type: 999, reason: "x").description, "malformed type 999 message: x")
    }
}
