import XCTest
@testable import RepdCore

final class ActivityLogTransactionTests: XCTestCase {
    func sample() -> ActivityLogTransaction {
        ActivityLogTransaction(
            transactionNumber: 0x0102_0304_0506_0708,
            updates: [.init(slot: 3, extent: 250), .init(slot: 1236, extent: ActivityLogTransaction.emptyExtent)],
            contextStartSlot: 888,
            context: (0..<10).map { UInt32($0 * 7) })
    }

    func testRoundTrip() throws {
        let transaction = sample()
        let bytes = transaction.encoded()
        XCTAssertEqual(bytes.count, 4096)
        XCTAssertEqual(try ActivityLogTransaction.decode(bytes), transaction)
    }

    func testFullTransactionRoundTrip() throws {
        XCTAssertEqual(ActivityLogTransaction.maximumContextEntries, 888)
        let transaction = ActivityLogTransaction(
            transactionNumber: .max,
            updates: (0..<64).map { .init(slot: UInt32($0), extent: UInt32.max - UInt32($0)) },
            contextStartSlot: 0,
            context: (0..<888).map { UInt32($0) &* 0x0101_0101 })
        XCTAssertEqual(try ActivityLogTransaction.decode(transaction.encoded()), transaction)
        let empty = ActivityLogTransaction(transactionNumber: 0, updates: [])
        XCTAssertEqual(try ActivityLogTransaction.decode(empty.encoded()), empty)
    }

    func testByteLayout() {
        let bytes = sample().encoded()
        XCTAssertEqual(Array(bytes[0..<8]), Array("REPDALTR".utf8))
        XCTAssertEqual(loadLE(UInt64.self, from: bytes, at: 8), 0x0102_0304_0506_0708)
        XCTAssertEqual(loadLE(UInt16.self, from: bytes, at: 20), 2)
        XCTAssertEqual(loadLE(UInt16.self, from: bytes, at: 22), 10)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 24), 888)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 32), 3)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 36), 1236)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 288), 250)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 292), 0xFFFF_FFFF)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 544 + 4 * 9), 63)
        var zeroed = bytes
        storeLE(UInt32(0), into: &zeroed, at: 16)
        XCTAssertEqual(loadLE(UInt32.self, from: bytes, at: 16), referenceCRC32C(zeroed))
    }

    func testUnwrittenSlotDecodesAsNil() throws {
        XCTAssertNil(try ActivityLogTransaction.decode([UInt8](repeating: 0, count: 4096)))
    }

    func testEverySingleByteCorruptionIsDetected() {
        let bytes = sample().encoded()
        for offset in 0..<4096 {
            var damaged = bytes
            damaged[offset] ^= 0x10
            let error = metadataError { () throws(MetadataError) in try ActivityLogTransaction.decode(damaged) }
            if offset < 8 {
                guard case .corrupt = error else { XCTFail("offset \(offset): \(String(describing: error))"); continue }
            } else {
                guard case .checksumMismatch = error else { XCTFail("offset \(offset): \(String(describing: error))"); continue }
            }
        }
    }

    func testCountsAndUnusedEntriesAreChecked() {
        func resealed(_ change: (inout [UInt8]) -> Void) -> [UInt8] {
            var bytes = sample().encoded()
            change(&bytes)
            storeLE(UInt32(0), into: &bytes, at: 16)
            storeLE(referenceCRC32C(bytes), into: &bytes, at: 16)
            return bytes
        }
        let cases: [(String, [UInt8])] = [
            ("too many updates", resealed { storeLE(UInt16(65), into: &$0, at: 20) }),
            ("too many context entries", resealed { storeLE(UInt16(889), into: &$0, at: 22) }),
            ("reserved not zero", resealed { $0[28] = 1 }),
            ("unused update slot not zero", resealed { $0[32 + 4 * 5] = 1 }),
            ("unused context not zero", resealed { $0[4095] = 1 }),
        ]
        for (name, bytes) in cases {
            guard case .corrupt = metadataError({ () throws(MetadataError) in try ActivityLogTransaction.decode(bytes) }) else {
                XCTFail("\(name): expected corrupt")
                continue
            }
        }
        guard case .corrupt = metadataError({ () throws(MetadataError) in try ActivityLogTransaction.decode([1, 2, 3]) }) else {
            return XCTFail("truncated block must be corrupt")
        }
    }

    func testRingSlot() {
        XCTAssertEqual(ActivityLogTransaction.ringSlot(forTransaction: 0), 0)
        XCTAssertEqual(ActivityLogTransaction.ringSlot(forTransaction: 63), 63)
        XCTAssertEqual(ActivityLogTransaction.ringSlot(forTransaction: 64), 0)
        XCTAssertEqual(ActivityLogTransaction.ringSlot(forTransaction: 130), 2)
    }
}
