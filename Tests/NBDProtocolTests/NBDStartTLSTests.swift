import NBDProtocol
import NIOCore
import XCTest

/// NBD_OPT_STARTTLS and the forced-TLS mode (`nbd-tls require`) of the negotiation.
final class NBDStartTLSTests: XCTestCase {
    let export = NBDExportInfo(name: "r0", description: "test", size: 1 << 20, flags: [.sendFlush])

    private func option(_ option: UInt32, _ payload: [UInt8] = []) -> ByteBuffer { nbdOption(option, ByteBuffer(bytes: payload)) }

    private func started(_ tls: NBDNegotiation.TLSPolicy) -> NBDNegotiation {
        var n = NBDNegotiation(exports: [export], tls: tls)
        var flags = ByteBuffer()
        flags.writeInteger(UInt32(3))
        _ = n.process(&flags)
        return n
    }

    /// The reply type of a single option reply.
    private func replyType(_ action: NBDNegotiation.Action?) -> UInt32? {
        let buffer: ByteBuffer
        switch action {
        case .send(let b)?, .startTLS(let b)?: buffer = b
        default: return nil
        }
        return buffer.getInteger(at: 12, as: UInt32.self)
    }

    private func goPayload() -> [UInt8] { [0, 0, 0, 2] + Array("r0".utf8) + [0, 0] }

    func testRequireAnswersEveryOptionButStartTLSAndAbortWithTLSRequired() {
        var n = started(.require)
        for (opt, payload) in [(NBD.Option.list.rawValue, []), (NBD.Option.structuredReply.rawValue, []), (NBD.Option.go.rawValue, goPayload()),
                               (NBD.Option.info.rawValue, goPayload()), (NBD.Option.listMetaContext.rawValue, []), (UInt32(99), [])] as [(UInt32, [UInt8])] {
            var input = option(opt, payload)
            XCTAssertEqual(replyType(n.process(&input)), NBD.OptionReply.errTLSRequired.rawValue, "option \(opt)")
            XCTAssertEqual(input.readableBytes, 0)
        }
        XCTAssertFalse(n.tlsActive)
        var name = option(NBD.Option.exportName.rawValue, Array("r0".utf8))
        guard case .sendAndClose(_, let reason)? = n.process(&name) else { return XCTFail("EXPORT_NAME in clear must close") }
        XCTAssertTrue(reason.contains("requires"), reason)
    }

    func testStartTLSThenTheExportOpensInsideTLS() {
        var n = started(.require)
        var withData = option(NBD.Option.startTLS.rawValue, [1])
        XCTAssertEqual(replyType(n.process(&withData)), NBD.OptionReply.errInvalid.rawValue)
        var start = option(NBD.Option.startTLS.rawValue)
        let action = n.process(&start)
        guard case .startTLS? = action else { return XCTFail("expected startTLS, got \(String(describing: action))") }
        XCTAssertEqual(replyType(action), NBD.OptionReply.ack.rawValue)
        XCTAssertTrue(n.tlsActive)
        var again = option(NBD.Option.startTLS.rawValue)
        XCTAssertEqual(replyType(n.process(&again)), NBD.OptionReply.errInvalid.rawValue, "a second STARTTLS")
        var go = option(NBD.Option.go.rawValue, goPayload())
        guard case .transmit? = n.process(&go) else { return XCTFail("GO inside TLS must open the export") }
    }

    func testOffRefusesStartTLSAndAllowServesBothWays() {
        var off = started(.off)
        var start = option(NBD.Option.startTLS.rawValue)
        XCTAssertEqual(replyType(off.process(&start)), NBD.OptionReply.errUnsupported.rawValue)
        var allow = started(.allow)
        var list = option(NBD.Option.list.rawValue)
        guard case .send? = allow.process(&list) else { return XCTFail("LIST in clear under allow") }
        var go = option(NBD.Option.go.rawValue, goPayload())
        guard case .transmit? = allow.process(&go) else { return XCTFail("GO in clear under allow") }
    }

    func testNothingNegotiatedInClearSurvivesStartTLS() {
        var n = started(.allow)
        var structured = option(NBD.Option.structuredReply.rawValue)
        XCTAssertEqual(replyType(n.process(&structured)), NBD.OptionReply.ack.rawValue)
        var start = option(NBD.Option.startTLS.rawValue)
        guard case .startTLS? = n.process(&start) else { return XCTFail("expected startTLS") }
        var go = option(NBD.Option.go.rawValue, goPayload())
        guard case .transmit(_, let session)? = n.process(&go) else { return XCTFail("expected transmit") }
        XCTAssertFalse(session.structuredReplies, "structured replies negotiated in clear must be negotiated again inside TLS")
    }
}
