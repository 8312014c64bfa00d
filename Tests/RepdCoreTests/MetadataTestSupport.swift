import XCTest
@testable import RepdCore

/// Deterministic pseudo-random numbers (MetadataTestRNG) so failures reproduce.
struct MetadataTestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Asserts that `body` throws exactly `expected`.
func XCTAssertThrowsMetadataError<T>(
    _ expected: MetadataError, _ body: () throws(MetadataError) -> T,
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        let value = try body()
        XCTFail("expected \(expected), got \(value)", file: file, line: line)
    } catch {
        XCTAssertEqual(error, expected, file: file, line: line)
    }
}

/// Runs `body` and returns the error it throws, or nil.
func metadataError<T>(_ body: () throws(MetadataError) -> T) -> MetadataError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

func storeLE<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
    for index in 0..<MemoryLayout<T>.size {
        bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
    }
}

func loadLE<T: FixedWidthInteger>(_ type: T.Type, from bytes: [UInt8], at offset: Int) -> T {
    var value: T = 0
    for index in 0..<MemoryLayout<T>.size {
        value |= T(bytes[offset + index]) << (8 * index)
    }
    return value
}

/// Recomputes the superblock CRC after a test changed a field on purpose.
func resealSuperblock(_ bytes: inout [UInt8]) {
    storeLE(referenceCRC32C(Array(bytes[0..<4092])), into: &bytes, at: 4092)
}

/// Bit-at-a-time CRC-32C, the reference the table-driven implementation is checked against.
func referenceCRC32C(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
    var crc = ~seed
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 {
            crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
    }
    return ~crc
}
