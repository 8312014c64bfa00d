import NBDProtocol
import NIOCore
import XCTest

final class NBDRequestTests: XCTestCase {
    let plain = NBDSession(
        export: NBDExportInfo(name: "r0", size: 1 << 20, flags: []), structuredReplies: false, metaContexts: [:])
    var structured: NBDSession {
        NBDSession(export: plain.export, structuredReplies: true, metaContexts: [NBD.baseAllocationID: NBD.baseAllocation])
    }

    func testHeaderRoundTripAndPartialInput() throws {
        let request = NBDRequest(flags: .fua, command: .write, cookie: 0xDEAD_BEEF, offset: 4096, length: 512)
        var bytes = ByteBuffer()
        request.encodeHeader(into: &bytes)
        XCTAssertEqual(bytes.readableBytes, 28)
        for cut in 0..<28 {
            var partial = bytes.getSlice(at: 0, length: cut)!
            XCTAssertNil(try NBDRequest.decodeHeader(&partial))
        }
        var whole = bytes
        XCTAssertEqual(try NBDRequest.decodeHeader(&whole), request)
    }

    func testBadMagicIsFramingError() {
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(0x12345678))
        bytes.writeRepeatingByte(0, count: 24)
        XCTAssertThrowsError(try NBDRequest.decodeHeader(&bytes))
    }

    func testValidationTable() {
        let size: UInt64 = 1 << 20
        let cases: [(NBDRequest, NBDSession, NBDError?)] = [
            (NBDRequest(command: .read, cookie: 1, offset: 0, length: 4096), plain, nil),
            (NBDRequest(command: .read, cookie: 1, offset: size - 512, length: 1024), plain, .invalid),
            (NBDRequest(command: .write, cookie: 1, offset: size - 512, length: 1024), plain, .noSpace),
            (NBDRequest(command: .write, cookie: 1, offset: UInt64.max - 10, length: 1024), plain, .noSpace),
            (NBDRequest(command: .read, cookie: 1, offset: 0, length: 64 << 20), plain, .overflow),
            (NBDRequest(command: .read, cookie: 1, offset: 0, length: 0), plain, .invalid),
            (NBDRequest(flags: [], rawCommand: 77, cookie: 1, offset: 0, length: 1), plain, .invalid),
            (NBDRequest(flags: .noHole, command: .write, cookie: 1, offset: 0, length: 512), plain, .invalid),
            (NBDRequest(flags: [.noHole, .fastZero, .fua], command: .writeZeroes, cookie: 1, offset: 0, length: 512), plain, nil),
            (NBDRequest(flags: .dontFragment, command: .read, cookie: 1, offset: 0, length: 512), plain, .invalid),
            (NBDRequest(flags: .dontFragment, command: .read, cookie: 1, offset: 0, length: 512), structured, nil),
            (NBDRequest(command: .blockStatus, cookie: 1, offset: 0, length: 512), plain, .invalid),
            (NBDRequest(flags: .requestOne, command: .blockStatus, cookie: 1, offset: 0, length: 512), structured, nil),
            (NBDRequest(command: .trim, cookie: 1, offset: 0, length: UInt32(size)), plain, nil),
            (NBDRequest(command: .trim, cookie: 1, offset: 1, length: UInt32(size)), plain, .noSpace),
            (NBDRequest(command: .flush, cookie: 1, offset: 0, length: 0), plain, nil),
            (NBDRequest(command: .cache, cookie: 1, offset: 0, length: 4096), plain, nil),
            (NBDRequest(flags: NBD.CommandFlags(rawValue: 1 << 9), command: .read, cookie: 1, offset: 0, length: 1), plain, .invalid),
            (NBDRequest(command: .resize, cookie: 1, offset: 0, length: 0), plain, .invalid),
        ]
        for (i, (request, session, expected)) in cases.enumerated() {
            XCTAssertEqual(request.validate(in: session)?.0, expected, "case \(i): \(request)")
        }
    }

    func testReplyEncodings() {
        var simple = ByteBuffer()
        NBDReply.simple(cookie: 7, error: .noSpace, into: &simple)
        XCTAssertEqual(simple.readInteger(as: UInt32.self), NBD.simpleReplyMagic)
        XCTAssertEqual(simple.readInteger(as: UInt32.self), 28)
        XCTAssertEqual(simple.readInteger(as: UInt64.self), 7)

        var chunk = ByteBuffer()
        NBDReply.errorChunk(cookie: 9, error: .invalid, message: "bad", into: &chunk)
        XCTAssertEqual(chunk.readInteger(as: UInt32.self), NBD.structuredReplyMagic)
        XCTAssertEqual(chunk.readInteger(as: UInt16.self), NBD.chunkFlagDone)
        XCTAssertEqual(chunk.readInteger(as: UInt16.self), NBD.ChunkType.error.rawValue)
        XCTAssertEqual(chunk.readInteger(as: UInt64.self), 9)
        XCTAssertEqual(chunk.readInteger(as: UInt32.self), 9)
        XCTAssertEqual(chunk.readInteger(as: UInt32.self), 22)
        XCTAssertEqual(chunk.readInteger(as: UInt16.self), 3)
        XCTAssertEqual(chunk.readString(length: 3), "bad")

        var status = ByteBuffer()
        NBDReply.blockStatus(cookie: 1, contextID: 1, extents: [(4096, 0), (8192, 3)], into: &status)
        XCTAssertEqual(status.readableBytes, 20 + 4 + 16)
    }
}
