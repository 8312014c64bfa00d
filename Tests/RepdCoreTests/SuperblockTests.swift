import Foundation
import XCTest
@testable import RepdCore

final class SuperblockTests: XCTestCase {
    func makeSuperblock(_ layout: MetadataLayout? = nil) throws -> Superblock {
        let layout = try layout ?? MetadataLayout.internal(backingSize: 1 << 30)
        var superblock = Superblock(
            layout: layout, resourceName: "r0", nodeName: "alpha",
            deviceUUID: 0x0123_4567_89AB_CDEF, createdAt: 1_700_000_000)
        superblock.flags = [.consistent, .wasUpToDate, .activityLogClean]
        superblock.generation = GenerationIdentifiers(
            current: 0xAAAA_BBBB_CCCC_DDDD, bitmap: 0x1111_2222_3333_4444,
            history: [0x5555_6666_7777_8888, 0x9999_0000_1234_5678])
        superblock.updateCounter = 77
        return superblock
    }

    func testFreshSuperblock() throws {
        let layout = try MetadataLayout.internal(backingSize: 1 << 30)
        let fresh = Superblock(layout: layout, resourceName: "r0", nodeName: "alpha", deviceUUID: 9, createdAt: 10)
        XCTAssertEqual(fresh.version, 1)
        XCTAssertEqual(fresh.flags, [])
        XCTAssertEqual(fresh.generation, GenerationIdentifiers(current: 4, bitmap: 0, history: [0, 0]))
        XCTAssertEqual(fresh.alExtents, 1237)
        XCTAssertEqual(fresh.updateCounter, 0)
        XCTAssertEqual(try Superblock.decode(fresh.encoded(), expectedResource: "r0"), fresh)
    }

    func testRoundTripForSeveralLayouts() throws {
        let layouts: [MetadataLayout] = try [
            .internal(backingSize: 1 << 20),
            .internal(backingSize: 1 << 30),
            .internal(backingSize: (1 << 40) + 12345),
            .external(backingSize: 1 << 30, metaDeviceSize: nil, index: nil),
            .external(backingSize: 1 << 30, metaDeviceSize: nil, index: 0),
            .external(backingSize: MetadataLayout.maximumIndexedUsableSize, metaDeviceSize: 1 << 30, index: 7),
        ]
        for layout in layouts {
            var superblock = try makeSuperblock(layout)
            superblock.alExtents = 6001
            superblock.resourceName = "résource-ü"
            superblock.nodeName = String(repeating: "n", count: 64)
            let bytes = superblock.encoded()
            XCTAssertEqual(bytes.count, 4096)
            XCTAssertEqual(try Superblock.decode(bytes, expectedResource: "résource-ü"), superblock)
            XCTAssertEqual(try Superblock.decode(bytes, expectedResource: nil), superblock)
            // Longer input (e.g. a whole metadata area read at once) is fine.
            XCTAssertEqual(try Superblock.decode(bytes + [UInt8](repeating: 0xEE, count: 100), expectedResource: nil), superblock)
        }
    }

    func testByteTable() throws {
        let superblock = try makeSuperblock()
        let bytes = superblock.encoded()
        let layout = superblock.layout
        XCTAssertEqual(Array(bytes[0..<8]), Array("REPDMETA".utf8))
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 8), 1)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 12), 4096)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 16), 0b100_0011)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 20), 4096)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 24), 4 << 20)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 28), 1237)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 32), layout.usableSize)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 40), 0xAAAA_BBBB_CCCC_DDDD)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 48), 0x1111_2222_3333_4444)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 56), 0x5555_6666_7777_8888)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 64), 0x9999_0000_1234_5678)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 72), 0x0123_4567_89AB_CDEF)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 80), layout.metadataOffset)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 88), layout.metadataSize)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 96), 4096)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 104), 262_144)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 112), 266_240)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 120), 32768)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 128), 77)
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 136), 1_700_000_000)
        XCTAssertEqual(Array(bytes[144..<146]), Array("r0".utf8))
        XCTAssertTrue(bytes[146..<208].allSatisfy { $0 == 0 })
        XCTAssertEqual(Array(bytes[208..<213]), Array("alpha".utf8))
        XCTAssertTrue(bytes[213..<4092].allSatisfy { $0 == 0 }, "padding is zero")
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 4092), referenceCRC32C(Array(bytes[0..<4092])))
        // Little-endian, byte by byte.
        XCTAssertEqual(Array(bytes[72..<80]), [0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01])
    }

    func testEverySingleByteCorruptionIsDetected() throws {
        let bytes = try makeSuperblock().encoded()
        for offset in 0..<4096 {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var damaged = bytes
                damaged[offset] ^= flip
                let error = metadataError { () throws(MetadataError) in try Superblock.decode(damaged, expectedResource: "r0") }
                if offset < 8 {
                    XCTAssertEqual(error, .noMetadata, "offset \(offset)")
                } else {
                    guard case .checksumMismatch(let stored, let computed) = error else {
                        XCTFail("offset \(offset) flip \(flip): \(String(describing: error))")
                        continue
                    }
                    XCTAssertNotEqual(stored, computed)
                }
            }
        }
    }

    func testNoMetadata() throws {
        XCTAssertThrowsMetadataError(.noMetadata) { () throws(MetadataError) in
            try Superblock.decode([UInt8](repeating: 0, count: 4096), expectedResource: "r0")
        }
        var bytes = try makeSuperblock().encoded()
        bytes.replaceSubrange(0..<8, with: Array("DRBDMETA".utf8))
        resealSuperblock(&bytes)
        XCTAssertThrowsMetadataError(.noMetadata) { () throws(MetadataError) in
            try Superblock.decode(bytes, expectedResource: nil)
        }
        XCTAssertEqual(MetadataError.noMetadata.description, "no repd metadata (bad magic)")
    }

    func testTruncatedInput() throws {
        let bytes = try makeSuperblock().encoded()
        guard case .corrupt = metadataError({ () throws(MetadataError) in try Superblock.decode(Array(bytes[0..<4095]), expectedResource: nil) }) else {
            return XCTFail("truncated superblock must be corrupt")
        }
        guard case .corrupt = metadataError({ () throws(MetadataError) in try Superblock.decode([], expectedResource: nil) }) else {
            return XCTFail("empty input must be corrupt")
        }
    }

    func testUnsupportedVersion() throws {
        var superblock = try makeSuperblock()
        superblock.version = 2
        XCTAssertThrowsMetadataError(.unsupportedVersion(2)) { () throws(MetadataError) in
            try Superblock.decode(superblock.encoded(), expectedResource: "r0")
        }
        var bytes = try makeSuperblock().encoded()
        storeLE(UInt32(0), into: &bytes, at: 8)
        resealSuperblock(&bytes)
        XCTAssertThrowsMetadataError(.unsupportedVersion(0)) { () throws(MetadataError) in
            try Superblock.decode(bytes, expectedResource: "r0")
        }
    }

    func testForeignResource() throws {
        let bytes = try makeSuperblock().encoded()
        XCTAssertThrowsMetadataError(.foreignResource(found: "r0", expected: "r1")) { () throws(MetadataError) in
            try Superblock.decode(bytes, expectedResource: "r1")
        }
        XCTAssertEqual(
            MetadataError.foreignResource(found: "r0", expected: "r1").description,
            "metadata belongs to resource 'r0', not 'r1'")
    }

    func testLayoutSanity() throws {
        var superblock = try makeSuperblock()
        superblock.layout.bitmapOffset = superblock.layout.metadataSize + 4096
        guard case .corrupt(let reason) = metadataError({ () throws(MetadataError) in
            try Superblock.decode(superblock.encoded(), expectedResource: "r0")
        }) else {
            return XCTFail("bitmap outside the area must be corrupt")
        }
        XCTAssertTrue(reason.contains("bitmap"), reason)

        var small = try makeSuperblock()
        small.layout.usableSize *= 2
        guard case .corrupt = metadataError({ () throws(MetadataError) in
            try Superblock.decode(small.encoded(), expectedResource: "r0")
        }) else {
            return XCTFail("bitmap too small for the usable size must be corrupt")
        }
    }

    func testFixedFieldsAreChecked() throws {
        let good = try makeSuperblock().encoded()
        for (offset, value) in [(12, UInt32(8192)), (20, UInt32(512)), (24, UInt32(1 << 20)), (28, UInt32(0))] {
            var bytes = good
            storeLE(value, into: &bytes, at: offset)
            resealSuperblock(&bytes)
            guard case .corrupt = metadataError({ () throws(MetadataError) in try Superblock.decode(bytes, expectedResource: nil) }) else {
                XCTFail("offset \(offset) value \(value) must be corrupt")
                continue
            }
        }
    }

    func testInvalidUTF8NameIsCorrupt() throws {
        var bytes = try makeSuperblock().encoded()
        bytes[144] = 0xC3  // start of a two-byte sequence, followed by "0"
        resealSuperblock(&bytes)
        guard case .corrupt = metadataError({ () throws(MetadataError) in try Superblock.decode(bytes, expectedResource: nil) }) else {
            return XCTFail("invalid UTF-8 must be corrupt")
        }
    }

    func testReservedBytesAreIgnored() throws {
        let superblock = try makeSuperblock()
        var bytes = superblock.encoded()
        bytes[1000] = 0x42
        resealSuperblock(&bytes)
        XCTAssertEqual(try Superblock.decode(bytes, expectedResource: "r0"), superblock)
    }

    func testLongNamesAreCutAtScalarBoundary() throws {
        var superblock = try makeSuperblock()
        superblock.resourceName = String(repeating: "a", count: 63) + "é"  // 65 bytes of UTF-8
        superblock.nodeName = String(repeating: "x", count: 70)
        let decoded = try Superblock.decode(superblock.encoded(), expectedResource: nil)
        XCTAssertEqual(decoded.resourceName, String(repeating: "a", count: 63))
        XCTAssertEqual(decoded.nodeName, String(repeating: "x", count: 64))
        XCTAssertTrue(Superblock.isValidName("r0"))
        XCTAssertTrue(Superblock.isValidName(String(repeating: "x", count: 64)))
        XCTAssertFalse(Superblock.isValidName(String(repeating: "x", count: 65)))
        XCTAssertFalse(Superblock.isValidName(""))
        XCTAssertFalse(Superblock.isValidName("a\u{0}b"))
    }

    func testHistoryIsAlwaysTwoEntries() throws {
        XCTAssertEqual(GenerationIdentifiers(current: 1, history: [7]).history, [7, 0])
        XCTAssertEqual(GenerationIdentifiers(current: 1, history: [7, 8, 9]).history, [7, 8])
        var superblock = try makeSuperblock()
        superblock.generation.history = [3]
        let decoded = try Superblock.decode(superblock.encoded(), expectedResource: nil)
        XCTAssertEqual(decoded.generation.history, [3, 0])
    }

    func testUnknownFlagBitsSurvive() throws {
        var superblock = try makeSuperblock()
        superblock.flags = MetadataFlags(rawValue: 1 << 0 | 1 << 2 | 1 << 20)
        let decoded = try Superblock.decode(superblock.encoded(), expectedResource: nil)
        XCTAssertEqual(decoded.flags.rawValue, 1 << 0 | 1 << 2 | 1 << 20)
        XCTAssertEqual(decoded.flags.names, ["consistent", "primary-indicator", "unknown-bit-20"])
    }

    func testFlagValuesAndNames() {
        let table: [(MetadataFlags, UInt32, String)] = [
            (.consistent, 1, "consistent"),
            (.wasUpToDate, 2, "was-up-to-date"),
            (.primaryIndicator, 4, "primary-indicator"),
            (.crashedPrimary, 8, "crashed-primary"),
            (.peerOutdated, 16, "peer-outdated"),
            (.fullSyncNeeded, 32, "full-sync-needed"),
            (.activityLogClean, 64, "activity-log-clean"),
            (.connectedIndicator, 128, "connected-indicator"),
        ]
        for (flag, raw, name) in table {
            XCTAssertEqual(flag.rawValue, raw)
            XCTAssertEqual(flag.names, [name])
        }
        XCTAssertEqual(MetadataFlags([.consistent, .primaryIndicator]).names, ["consistent", "primary-indicator"])
        XCTAssertEqual(MetadataFlags().names, [])
    }

    func testCodable() throws {
        let superblock = try makeSuperblock()
        let data = try JSONEncoder().encode(superblock)
        XCTAssertEqual(try JSONDecoder().decode(Superblock.self, from: data), superblock)
    }

    func testErrorDescriptions() {
        XCTAssertEqual(
            MetadataError.checksumMismatch(stored: 0xAB, computed: 0xDEAD_BEEF).description,
            "metadata checksum mismatch: stored crc32c 0x000000ab, computed 0xdeadbeef; the metadata block is damaged")
        XCTAssertEqual(MetadataError.unsupportedVersion(2).description,
                       "unsupported metadata format version 2 (this build reads version 1)")
        XCTAssertTrue(MetadataError.tooLargeForIndexedSlot(maximumUsable: 5).description.contains("at most 5 bytes"))
        XCTAssertTrue(MetadataError.deviceTooSmall(needed: 2, available: 1).description.contains("2 bytes needed"))
        XCTAssertEqual(MetadataError.corrupt("x").description, "corrupt metadata: x")
    }
}
