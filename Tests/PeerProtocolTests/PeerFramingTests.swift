import NIOCore
import NIOEmbedded
import NIOTestUtils
import PeerProtocol
import XCTest

final class PeerFramingTests: XCTestCase {
    func testVerifierEveryMessage() throws {
        var pairs = Samples.all.map { (Samples.encoded($0), [$0]) }
        // Several frames in one read.
        var batch = ByteBuffer()
        for message in Samples.all.prefix(5) { message.encode(into: &batch) }
        pairs.append((batch, Array(Samples.all.prefix(5))))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { PeerFrameDecoder() }
    }

    func testPartialFramesConsumeNothing() throws {
        for message in Samples.all {
            let frame = Samples.encoded(message)
            for cut in [0, 1, 11, 12, 13, frame.readableBytes - 1] where cut >= 0 && cut < frame.readableBytes {
                var partial = frame.getSlice(at: 0, length: cut)!
                var decoder = PeerFrameDecoder()
                XCTAssertNil(try decoder.decode(buffer: &partial), "\(message.type) cut at \(cut)")
                XCTAssertEqual(partial.readerIndex, 0)
            }
        }
    }

    /// Each corrupted header throws as soon as its 12 bytes are there: nothing of the payload is awaited.
    func testCorruptHeadersThrowBeforeThePayload() {
        func header(magic: UInt32 = PeerWire.magic, type: UInt16, flags: UInt16 = 0, length: UInt32) -> ByteBuffer {
            var buffer = ByteBuffer()
            buffer.writeInteger(magic)
            buffer.writeInteger(type)
            buffer.writeInteger(flags)
            buffer.writeInteger(length)
            return buffer
        }
        let cases: [(ByteBuffer, PeerProtocolError, line: UInt)] = [
            (header(magic: 0x5250_4432, type: 1, length: 10), .badMagic(0x5250_4432), #line),
            (header(magic: 0x4854_5450, type: 0x2F31, length: 0x2E31_2032), .badMagic(0x4854_5450), #line),   // "HTTP/1.1 2"
            (header(type: 0, length: 0), .unknownType(0), #line),
            (header(type: 6, length: 100), .unknownType(6), #line),
            (header(type: 254, length: 0), .unknownType(254), #line),
            (header(type: 48, flags: 1, length: 0), .malformed(type: 48, reason: "frame flags must be 0, got 0x0001"), #line),
            (header(type: 32, flags: 0x0100, length: 1000), .malformed(type: 32, reason: "frame flags must be 0, got 0x0100"), #line),
            (header(type: 32, length: UInt32(PeerWire.maximumPayload) + 1), .oversized(type: 32, length: UInt32(PeerWire.maximumPayload) + 1), #line),
            (header(type: 67, length: .max), .oversized(type: 67, length: .max), #line),
            (header(type: 48, length: 8193), .oversized(type: 48, length: 8193), #line),
            (header(type: 1, length: 1 << 20), .oversized(type: 1, length: 1 << 20), #line),
            (header(type: 64, length: 1 << 16), .oversized(type: 64, length: 1 << 16), #line),
        ]
        for (bytes, expected, line) in cases {
            XCTAssertEqual(bytes.readableBytes, PeerWire.headerSize)
            var input = bytes
            var decoder = PeerFrameDecoder()
            XCTAssertThrowsError(try decoder.decode(buffer: &input), line: line) {
                XCTAssertEqual($0 as? PeerProtocolError, expected, line: line)
            }
            // The same through a channel pipeline: the error surfaces on the read that brought the header.
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
            XCTAssertThrowsError(try channel.writeInbound(bytes), line: line) {
                XCTAssertEqual($0 as? PeerProtocolError, expected, line: line)
            }
            _ = try? channel.finish()
        }
    }

    func testLargestLengthsAreAcceptedAndAwaited() throws {
        for (type, length) in [(PeerMessageType.write, PeerWire.maximumPayload), (.syncData, PeerWire.maximumPayload), (.ping, 8192)] {
            var header = Samples.frame(type: type.rawValue, payload: [])
            header.setInteger(UInt32(length), at: 8)
            var decoder = PeerFrameDecoder()
            XCTAssertNil(try decoder.decode(buffer: &header))
        }
    }

    /// A connection cut in the middle of a frame is a network failure, not a protocol error: the
    /// partial frame is dropped without an error, and the link sees the channel go inactive.
    func testPartialFrameAtEOFIsDroppedQuietly() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        var bytes = Samples.encoded(.ping)
        bytes.writeImmutableBuffer(Samples.encoded(.flush(sequence: 1)).getSlice(at: 0, length: 15)!)
        try channel.writeInbound(bytes)
        XCTAssertEqual(try channel.readInbound(as: PeerMessage.self), .ping)
        XCTAssertNil(try channel.readInbound(as: PeerMessage.self))
        XCTAssertNoThrow(try channel.finish())
        XCTAssertNil(try channel.readInbound(as: PeerMessage.self))
    }

    // MARK: encoder

    func testEncoderWritesBulkAsASecondUncopiedBuffer() throws {
        let channel = EmbeddedChannel(handler: PeerFrameEncoder())
        let data = Samples.bytes(4096)
        let dataAddress = data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(PeerMessage.write(PeerWrite(sequence: 7, offset: 512, data: data)), promise: promise)
        XCTAssertNoThrow(try promise.futureResult.wait())
        let header = try XCTUnwrap(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(header.readableBytes, 12 + 22)
        XCTAssertEqual(header.getInteger(at: 8, as: UInt32.self), UInt32(22 + 4096))
        let bulk = try XCTUnwrap(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(bulk, data)
        XCTAssertEqual(bulk.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) }, dataAddress)
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testEncoderWritesEveryMessageAsItsFrame() throws {
        let channel = EmbeddedChannel(handler: PeerFrameEncoder())
        for message in Samples.all {
            try channel.writeOutbound(message)
            var written = ByteBuffer()
            while var part = try channel.readOutbound(as: ByteBuffer.self) { written.writeBuffer(&part) }
            XCTAssertEqual(written, Samples.encoded(message), "\(message.type)")
        }
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testEncoderAndDecoderBackToBack() throws {
        let sender = EmbeddedChannel(handler: PeerFrameEncoder())
        let receiver = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        for message in Samples.all { try sender.writeOutbound(message) }
        while let part = try sender.readOutbound(as: ByteBuffer.self) { try receiver.writeInbound(part) }
        var received: [PeerMessage] = []
        while let message = try receiver.readInbound(as: PeerMessage.self) { received.append(message) }
        XCTAssertEqual(received, Samples.all)
        XCTAssertTrue(try sender.finish().isClean)
        XCTAssertTrue(try receiver.finish().isClean)
    }
}
