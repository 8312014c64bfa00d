import XCTest
@testable import RepdCore

final class CRC32CTests: XCTestCase {
    func testCheckVectors() {
        let vectors: [(String, [UInt8], UInt32)] = [
            ("empty", [], 0x0000_0000),
            ("123456789", Array("123456789".utf8), 0xE306_9283),
            ("32 zero bytes", [UInt8](repeating: 0, count: 32), 0x8A91_36AA),
            ("32 0xFF bytes", [UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
            ("0...31 ascending", (0..<32).map { UInt8($0) }, 0x46DD_794E),
            ("31...0 descending", (0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C),
            ("fox", Array("The quick brown fox jumps over the lazy dog".utf8), 0x2262_0404),
        ]
        for (name, bytes, expected) in vectors {
            XCTAssertEqual(CRC32C.checksum(bytes), expected, name)
            XCTAssertEqual(referenceCRC32C(bytes), expected, "reference: \(name)")
        }
    }

    func testSlicingMatchesBitwiseReferenceForRandomLengthsAndAlignments() {
        var random = MetadataTestRNG(seed: 0xC0FFEE)
        let pool = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &random) }
        for _ in 0..<400 {
            let start = Int.random(in: 0..<64, using: &random)
            let length = Int.random(in: 0..<(pool.count - start), using: &random)
            let slice = Array(pool[start..<(start + length)])
            let seed = UInt32.random(in: 0...UInt32.max, using: &random)
            let expected = referenceCRC32C(slice, seed: seed)
            // Through the pool directly, so the base pointer has every alignment.
            let actual = pool.withUnsafeBytes {
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)]), seed: seed)
            }
            XCTAssertEqual(actual, expected, "start \(start) length \(length)")
        }
    }

    func testEveryShortLength() {
        let bytes = (0..<80).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for length in 0...bytes.count {
            XCTAssertEqual(CRC32C.checksum(Array(bytes[0..<length])), referenceCRC32C(Array(bytes[0..<length])), "length \(length)")
        }
    }

    func testSeedChainsChecksums() {
        let a = Array("12345".utf8)
        let b = Array("6789".utf8)
        let first = CRC32C.checksum(a)
        let chained = b.withUnsafeBytes { CRC32C.checksum($0, seed: first) }
        XCTAssertEqual(chained, 0xE306_9283)
    }

    func testLargeBuffer() {
        let bytes = [UInt8](repeating: 0xA5, count: 1 << 20)
        XCTAssertEqual(CRC32C.checksum(bytes), referenceCRC32C(bytes))
    }
}
