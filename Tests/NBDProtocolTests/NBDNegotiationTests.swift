import NBDProtocol
import NIOCore
import XCTest

final class NBDNegotiationTests: XCTestCase {
    let export = NBDExportInfo(name: "r0", description: "test", size: 1 << 20, flags: [.sendFlush, .sendFUA, .canMultiConn])

    func option(_ option: UInt32, _ payload: ByteBuffer = ByteBuffer()) -> ByteBuffer { nbdOption(option, payload) }

    func goPayload(_ name: String, infos: [UInt16] = []) -> ByteBuffer {
        var p = ByteBuffer()
        p.writeInteger(UInt32(name.utf8.count))
        p.writeString(name)
        p.writeInteger(UInt16(infos.count))
        for i in infos { p.writeInteger(i) }
        return p
    }

    /// Parses option replies: (option, type, payload).
    func replies(_ buffer: ByteBuffer) -> [(UInt32, UInt32, ByteBuffer)] {
        var b = buffer
        var out: [(UInt32, UInt32, ByteBuffer)] = []
        while b.readableBytes > 0 {
            XCTAssertEqual(b.readInteger(as: UInt64.self), NBD.optionReplyMagic)
            let opt = b.readInteger(as: UInt32.self)!
            let type = b.readInteger(as: UInt32.self)!
            let len = b.readInteger(as: UInt32.self)!
            out.append((opt, type, b.readSlice(length: Int(len))!))
        }
        return out
    }

    func started() -> NBDNegotiation {
        var n = NBDNegotiation(exports: [export])
        var flags = ByteBuffer()
        flags.writeInteger(UInt32(3))
        guard case .send = n.process(&flags) else { XCTFail("flags not accepted"); return n }
        return n
    }

    func testGreetingBytes() {
        var g = NBDNegotiation.greeting()
        XCTAssertEqual(g.readBytes(length: 8), Array("NBDMAGIC".utf8))
        XCTAssertEqual(g.readBytes(length: 8), Array("IHAVEOPT".utf8))
        XCTAssertEqual(g.readInteger(as: UInt16.self), 3)
        XCTAssertEqual(g.readableBytes, 0)
    }

    func testUnknownClientFlagsClose() {
        var n = NBDNegotiation(exports: [export])
        var flags = ByteBuffer()
        flags.writeInteger(UInt32(0x80))
        guard case .sendAndClose = n.process(&flags) else { return XCTFail("expected close") }
    }

    func testGoReturnsExportInfoAndBlockSizes() {
        var n = started()
        var input = option(NBD.Option.go.rawValue, goPayload("r0", infos: [NBD.Info.blockSize.rawValue]))
        guard case .transmit(let out, let session) = n.process(&input) else { return XCTFail("expected transmit") }
        let r = replies(out)
        XCTAssertEqual(r.map(\.1), [NBD.OptionReply.info.rawValue, NBD.OptionReply.info.rawValue, NBD.OptionReply.ack.rawValue])
        var info = r[0].2
        XCTAssertEqual(info.readInteger(as: UInt16.self), 0)
        XCTAssertEqual(info.readInteger(as: UInt64.self), 1 << 20)
        let flags = NBD.TransmissionFlags(rawValue: info.readInteger(as: UInt16.self)!)
        XCTAssertTrue(flags.contains(.hasFlags))
        XCTAssertTrue(flags.contains(.canMultiConn))
        var sizes = r[1].2
        XCTAssertEqual(sizes.readInteger(as: UInt16.self), 3)
        XCTAssertEqual(sizes.readInteger(as: UInt32.self), 1)
        XCTAssertEqual(sizes.readInteger(as: UInt32.self), 4096)
        XCTAssertEqual(sizes.readInteger(as: UInt32.self), 32 << 20)
        XCTAssertEqual(session.export.name, "r0")
        XCTAssertFalse(session.structuredReplies)
        XCTAssertTrue(n.isFinished)
    }

    func testEmptyNameIsDefaultExport() {
        var n = started()
        var input = option(NBD.Option.go.rawValue, goPayload(""))
        guard case .transmit(_, let session) = n.process(&input) else { return XCTFail("expected transmit") }
        XCTAssertEqual(session.export.name, "r0")
    }

    func testUnknownExportGetsErrUnknownAndNegotiationContinues() {
        var n = started()
        var input = option(NBD.Option.info.rawValue, goPayload("nope"))
        guard case .send(let out) = n.process(&input) else { return XCTFail("expected reply") }
        XCTAssertEqual(replies(out).first?.1, NBD.OptionReply.errUnknown.rawValue)
        XCTAssertFalse(n.isFinished)
    }

    func testUnknownOptionIsUnsupported() {
        var n = started()
        var input = option(999)
        guard case .send(let out) = n.process(&input) else { return XCTFail("expected reply") }
        XCTAssertEqual(replies(out).first?.1, NBD.OptionReply.errUnsupported.rawValue)
    }

    func testOversizedOptionCloses() {
        var n = started()
        var input = ByteBuffer()
        input.writeInteger(NBD.optionMagic)
        input.writeInteger(NBD.Option.go.rawValue)
        input.writeInteger(UInt32(0xFFFF_FFF0))
        guard case .sendAndClose = n.process(&input) else { return XCTFail("expected close") }
    }

    func testPartialOptionNeedsMoreBytes() {
        var n = started()
        let full = option(NBD.Option.go.rawValue, goPayload("r0"))
        for cut in [0, 5, 15, 16, full.readableBytes - 1] {
            var copy = n
            var partial = full.getSlice(at: 0, length: cut)!
            XCTAssertNil(copy.process(&partial), "cut at \(cut)")
        }
        var whole = full
        XCTAssertNotNil(n.process(&whole))
    }

    func testBadOptionMagicCloses() {
        var n = started()
        var input = ByteBuffer()
        input.writeInteger(UInt64(0x1234))
        input.writeInteger(UInt64(0))
        guard case .sendAndClose = n.process(&input) else { return XCTFail("expected close") }
    }

    func testListAndAbort() {
        var n = started()
        var list = option(NBD.Option.list.rawValue)
        guard case .send(let out) = n.process(&list) else { return XCTFail() }
        let r = replies(out)
        XCTAssertEqual(r.map(\.1), [NBD.OptionReply.server.rawValue, NBD.OptionReply.ack.rawValue])
        var server = r[0].2
        let len = server.readInteger(as: UInt32.self)!
        XCTAssertEqual(server.readString(length: Int(len)), "r0")
        var abort = option(NBD.Option.abort.rawValue)
        guard case .sendAndClose(let ack, _) = n.process(&abort) else { return XCTFail() }
        XCTAssertEqual(replies(ack).first?.1, NBD.OptionReply.ack.rawValue)
    }

    func metaPayload(_ name: String, _ queries: [String]) -> ByteBuffer {
        var p = ByteBuffer()
        p.writeInteger(UInt32(name.utf8.count))
        p.writeString(name)
        p.writeInteger(UInt32(queries.count))
        for q in queries {
            p.writeInteger(UInt32(q.utf8.count))
            p.writeString(q)
        }
        return p
    }

    func testSetMetaContextNeedsStructuredReplies() {
        var n = started()
        var set = option(NBD.Option.setMetaContext.rawValue, metaPayload("r0", [NBD.baseAllocation]))
        guard case .send(let out) = n.process(&set) else { return XCTFail() }
        XCTAssertEqual(replies(out).first?.1, NBD.OptionReply.errInvalid.rawValue)
    }

    func testStructuredRepliesAndBaseAllocation() {
        var n = started()
        var sr = option(NBD.Option.structuredReply.rawValue)
        guard case .send(let ack) = n.process(&sr) else { return XCTFail() }
        XCTAssertEqual(replies(ack).first?.1, NBD.OptionReply.ack.rawValue)
        var list = option(NBD.Option.listMetaContext.rawValue, metaPayload("r0", ["base:"]))
        guard case .send(let listed) = n.process(&list) else { return XCTFail() }
        XCTAssertEqual(replies(listed).map(\.1), [NBD.OptionReply.metaContext.rawValue, NBD.OptionReply.ack.rawValue])
        var set = option(NBD.Option.setMetaContext.rawValue, metaPayload("r0", [NBD.baseAllocation, "qemu:dirty-bitmap:x"]))
        guard case .send(let out) = n.process(&set) else { return XCTFail() }
        let r = replies(out)
        XCTAssertEqual(r.map(\.1), [NBD.OptionReply.metaContext.rawValue, NBD.OptionReply.ack.rawValue])
        var ctx = r[0].2
        XCTAssertEqual(ctx.readInteger(as: UInt32.self), NBD.baseAllocationID)
        XCTAssertEqual(ctx.readString(length: ctx.readableBytes), NBD.baseAllocation)
        var go = option(NBD.Option.go.rawValue, goPayload("r0"))
        guard case .transmit(_, let session) = n.process(&go) else { return XCTFail() }
        XCTAssertTrue(session.structuredReplies)
        XCTAssertTrue(session.blockStatusEnabled)
    }

    func testExportNameOption() {
        var n = NBDNegotiation(exports: [export])
        var flags = ByteBuffer()
        flags.writeInteger(UInt32(1)) // no NO_ZEROES: 124 zero bytes follow
        _ = n.process(&flags)
        var name = ByteBuffer()
        name.writeString("r0")
        var input = option(NBD.Option.exportName.rawValue, name)
        guard case .transmit(var out, _) = n.process(&input) else { return XCTFail() }
        XCTAssertEqual(out.readInteger(as: UInt64.self), 1 << 20)
        _ = out.readInteger(as: UInt16.self)
        XCTAssertEqual(out.readableBytes, 124)
    }
}
