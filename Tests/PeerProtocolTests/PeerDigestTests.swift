import NIOCore
@testable import PeerProtocol
import XCTest

/// `data-integrity-alg` on the wire: a data write with flag bit 2 carries algorithm, length and
/// digest between its fixed fields and its data.
final class PeerDigestTests: XCTestCase {
    func decode(_ payload: [UInt8]) throws -> PeerMessage {
        try PeerMessage.decode(type: PeerMessageType.write.rawValue, flags: 0, payload: ByteBuffer(bytes: payload))
    }

    func testBytesAndRoundTrip() throws {
        var write = PeerWrite(sequence: 5, offset: 0x1000, data: ByteBuffer(bytes: [0xAB, 0xCD]))
        write.digest = PeerDigest(algorithm: 1, bytes: [1, 2, 3, 4])
        let frame = Samples.encoded(.write(write))
        XCTAssertEqual(Array(frame.readableBytesView.dropFirst(12)),
                       .be(UInt64(5)) + .be(UInt64(0x1000)) + .be(UInt32(2)) + [0, 0x04] + [1, 4, 1, 2, 3, 4] + [0xAB, 0xCD])
        XCTAssertEqual(try decode(Array(frame.readableBytesView.dropFirst(12))), .write(write))
    }

    func testMalformedDigests() {
        let head: [UInt8] = .be(UInt64(5)) + .be(UInt64(0)) + .be(UInt32(2))
        let cases: [([UInt8], String)] = [
            (head + [0, 0x04] + [9, 4, 1, 2, 3, 4] + [0xAB, 0xCD], "unknown digest algorithm 9"),
            (head + [0, 0x04] + [1, 20] + Array(repeating: 0, count: 20) + [0xAB, 0xCD], "a crc32c digest is 4 bytes, not 20"),
            (head + [0, 0x04] + [3, 32, 1, 2], "truncated in the digest"),
            (.be(UInt64(5)) + .be(UInt64(0)) + .be(UInt32(4096)) + [2, 0x04] + [1, 4, 1, 2, 3, 4], "a write of kind zeroes carries a digest"),
        ]
        for (payload, reason) in cases {
            XCTAssertThrowsError(try decode(payload)) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(error) does not say \(reason)")
            }
        }
    }

    func testAlgorithmCodes() {
        XCTAssertEqual(PeerDigest.code("crc32c"), 1)
        XCTAssertEqual(PeerDigest.code("sha1"), 2)
        XCTAssertEqual(PeerDigest.code("sha256"), 3)
        XCTAssertNil(PeerDigest.code("md5"))
    }
}
