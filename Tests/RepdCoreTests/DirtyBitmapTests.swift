import XCTest
@testable import RepdCore

final class DirtyBitmapTests: XCTestCase {
    static let block: UInt64 = 4096
    static let pageBlocks = 32768

    func testPageCounts() {
        for (blocks, pages) in [(0, 0), (1, 1), (32768, 1), (32769, 2), (100_000, 4), (262_144, 8)] {
            let bitmap = DirtyBitmap(blockCount: blocks)
            XCTAssertEqual(bitmap.pageCount, pages, "\(blocks) blocks")
            XCTAssertEqual(bitmap.encoded().count, pages * 4096)
            XCTAssertEqual(bitmap.outOfSyncCount, 0)
        }
    }

    /// (name, range, expected set blocks, expected pages) on a fresh bitmap of 100000 blocks.
    static let markTable: [(String, Range<UInt64>, [Int], [Int])] = [
        ("aligned block", 0..<4096, [0], [0]),
        ("aligned two blocks", 8192..<16384, [2, 3], [0]),
        ("unaligned inside one block", 100..<200, [0], [0]),
        ("unaligned across a boundary", 4095..<4097, [0, 1], [0]),
        ("unaligned start and end", 100..<5000, [0, 1], [0]),
        ("across a word", 63 * block..<65 * block, [63, 64], [0]),
        ("across a page", UInt64(pageBlocks - 1) * block..<UInt64(pageBlocks + 1) * block, [pageBlocks - 1, pageBlocks], [0, 1]),
        ("clamped at the end", 99_999 * block + 7..<UInt64.max, [99_999], [3]),
        ("entirely beyond the end", 100_000 * block..<200_000 * block, [], []),
        ("empty", 5000..<5000, [], []),
        ("last byte", 100_000 * block - 1..<100_000 * block, [99_999], [3]),
    ]

    func testMarkOutOfSyncTable() {
        for (name, range, blocks, pages) in Self.markTable {
            var bitmap = DirtyBitmap(blockCount: 100_000)
            XCTAssertEqual(bitmap.markOutOfSync(byteRange: range), pages, name)
            XCTAssertEqual(bitmap.outOfSyncCount, blocks.count, name)
            for block in blocks { XCTAssertTrue(bitmap.isOutOfSync(block: block), "\(name): block \(block)") }
            XCTAssertEqual(bitmap.markOutOfSync(byteRange: range), [], "\(name): marking again changes nothing")
            XCTAssertEqual(bitmap.nextOutOfSync(fromBlock: 0), blocks.first, name)
        }
    }

    func testMarkInSyncOnlyClearsFullyCoveredBlocks() {
        let table: [(String, Range<UInt64>, [Int], [Int])] = [
            ("aligned", 4096..<8192, [1], [0]),
            ("partial first block stays", 100..<8192, [1], [0]),
            ("partial last block stays", 4096..<12000, [1], [0]),
            ("within one block", 10..<4000, [], []),
            ("exactly one block unaligned ends", 4095..<8193, [1], [0]),
            ("across a page", UInt64(Self.pageBlocks - 1) * Self.block..<UInt64(Self.pageBlocks + 1) * Self.block,
             [Self.pageBlocks - 1, Self.pageBlocks], [0, 1]),
            ("clamped", 99_998 * Self.block..<UInt64.max, [99_998, 99_999], [3]),
            ("empty", 0..<0, [], []),
        ]
        for (name, range, cleared, pages) in table {
            var bitmap = DirtyBitmap(blockCount: 100_000)
            bitmap.markAllOutOfSync()
            XCTAssertEqual(bitmap.outOfSyncCount, 100_000)
            XCTAssertEqual(bitmap.markInSync(byteRange: range), pages, name)
            XCTAssertEqual(bitmap.outOfSyncCount, 100_000 - cleared.count, name)
            for block in cleared { XCTAssertFalse(bitmap.isOutOfSync(block: block), "\(name): block \(block)") }
            XCTAssertEqual(bitmap.nextInSync(fromBlock: 0), cleared.first ?? 100_000, name)
        }
    }

    func testMarkAllAndClearAll() {
        var bitmap = DirtyBitmap(blockCount: 100_000)
        XCTAssertEqual(bitmap.markAllOutOfSync(), [0, 1, 2, 3])
        XCTAssertEqual(bitmap.outOfSyncCount, 100_000)
        XCTAssertEqual(bitmap.outOfSyncBytes, 100_000 * 4096)
        XCTAssertEqual(bitmap.markAllOutOfSync(), [])
        XCTAssertEqual(bitmap.outOfSyncRanges(limit: 10), [0..<100_000 * 4096])
        XCTAssertEqual(bitmap.clearAll(), [0, 1, 2, 3])
        XCTAssertEqual(bitmap.outOfSyncCount, 0)
        XCTAssertEqual(bitmap.clearAll(), [])
        XCTAssertEqual(bitmap, DirtyBitmap(blockCount: 100_000))
    }

    func testLastPartialWordOnDisk() throws {
        var bitmap = DirtyBitmap(blockCount: 70)
        bitmap.markAllOutOfSync()
        let page = bitmap.page(0)
        XCTAssertEqual(page.count, 4096)
        XCTAssertEqual(Array(page[0..<8]), [UInt8](repeating: 0xFF, count: 8))
        XCTAssertEqual(page[8], 0x3F, "blocks 64...69 are bits 0...5 of byte 8")
        XCTAssertTrue(page[9...].allSatisfy { $0 == 0 })
        XCTAssertEqual(bitmap.nextOutOfSync(fromBlock: 69), 69)
        XCTAssertNil(bitmap.nextOutOfSync(fromBlock: 70))
        XCTAssertEqual(bitmap.nextInSync(fromBlock: 0), 70)
        XCTAssertEqual(try DirtyBitmap(decoding: page, blockCount: 70), bitmap)
        XCTAssertEqual(try DirtyBitmap(decoding: Array(page[0..<9]), blockCount: 70), bitmap, "only ceil(70/8) bytes needed")
    }

    func testBitOrderOnDisk() {
        var bitmap = DirtyBitmap(blockCount: 100_000)
        bitmap.markOutOfSync(byteRange: (8 * 3 + 5) * 4096..<(8 * 3 + 6) * 4096)  // block 29: byte 3, bit 5
        bitmap.markOutOfSync(byteRange: UInt64(Self.pageBlocks + 9) * 4096..<UInt64(Self.pageBlocks + 10) * 4096)  // page 1, byte 1, bit 1
        let bytes = bitmap.encoded()
        XCTAssertEqual(bytes[3], 1 << 5)
        XCTAssertEqual(bytes[4096 + 1], 1 << 1)
        XCTAssertEqual(bytes.filter { $0 != 0 }.count, 2)
        XCTAssertEqual(bitmap.page(1)[1], 1 << 1)
    }

    func testDecodeRejectsStrayBits() {
        var bytes = [UInt8](repeating: 0, count: 4096)
        bytes[8] = 1 << 6  // block 70 of a 70-block bitmap
        XCTAssertNotNil(metadataError { () throws(MetadataError) in try DirtyBitmap(decoding: bytes, blockCount: 70) })
        XCTAssertNoThrow(try DirtyBitmap(decoding: bytes, blockCount: 71))

        bytes = [UInt8](repeating: 0, count: 4096)
        bytes[100] = 1  // a later word
        XCTAssertNotNil(metadataError { () throws(MetadataError) in try DirtyBitmap(decoding: bytes, blockCount: 64) })

        bytes = [UInt8](repeating: 0, count: 8192)
        bytes[5000] = 0x80  // past the last page
        XCTAssertNotNil(metadataError { () throws(MetadataError) in try DirtyBitmap(decoding: bytes, blockCount: 64) })

        bytes = [UInt8](repeating: 0, count: 4096)
        bytes[7] = 0x80  // block 63 of a 64-block bitmap: fine
        let bitmap = try? DirtyBitmap(decoding: bytes, blockCount: 64)
        XCTAssertEqual(bitmap?.outOfSyncCount, 1)
        XCTAssertEqual(bitmap?.isOutOfSync(block: 63), true)

        guard case .corrupt = metadataError({ () throws(MetadataError) in try DirtyBitmap(decoding: [0, 0], blockCount: 17) }) else {
            return XCTFail("truncated bitmap must be corrupt")
        }
    }

    func testDecodeRoundTrip() throws {
        var random = MetadataTestRNG(seed: 7)
        for blocks in [1, 63, 64, 65, 32767, 32768, 32769, 100_003] {
            var bitmap = DirtyBitmap(blockCount: blocks)
            for _ in 0..<50 {
                let start = UInt64.random(in: 0..<UInt64(blocks) * 4096, using: &random)
                let length = UInt64.random(in: 1...300_000, using: &random)
                bitmap.markOutOfSync(byteRange: start..<start + length)
            }
            let decoded = try DirtyBitmap(decoding: bitmap.encoded(), blockCount: blocks)
            XCTAssertEqual(decoded, bitmap, "\(blocks) blocks")
            XCTAssertEqual(decoded.outOfSyncCount, bitmap.outOfSyncCount)
            var pages: [UInt8] = []
            for index in 0..<bitmap.pageCount { pages += bitmap.page(index) }
            XCTAssertEqual(pages, bitmap.encoded())
        }
    }

    func testOutOfSyncRanges() {
        var bitmap = DirtyBitmap(blockCount: 200)
        for blocks in [0..<3, 10..<11, 63..<66, 127..<129, 199..<200] {
            bitmap.markOutOfSync(byteRange: UInt64(blocks.lowerBound) * 4096..<UInt64(blocks.upperBound) * 4096)
        }
        let expected: [Range<UInt64>] = [0..<3 * 4096, 10 * 4096..<11 * 4096, 63 * 4096..<66 * 4096,
                                         127 * 4096..<129 * 4096, 199 * 4096..<200 * 4096]
        XCTAssertEqual(bitmap.outOfSyncRanges(limit: 100), expected)
        XCTAssertEqual(bitmap.outOfSyncRanges(limit: 2), Array(expected.prefix(2)))
        XCTAssertEqual(bitmap.outOfSyncRanges(limit: 0), [])
        XCTAssertEqual(bitmap.outOfSyncCount, 3 + 1 + 3 + 2 + 1)
        XCTAssertEqual(bitmap.nextOutOfSync(fromBlock: -5), 0)
        XCTAssertEqual(bitmap.nextOutOfSync(fromBlock: 3), 10)
        XCTAssertEqual(bitmap.nextOutOfSync(fromBlock: 66), 127)
        XCTAssertEqual(bitmap.nextOutOfSync(fromBlock: 129), 199)
        XCTAssertNil(bitmap.nextOutOfSync(fromBlock: 200))
        XCTAssertNil(DirtyBitmap(blockCount: 0).nextOutOfSync(fromBlock: 0))
        XCTAssertEqual(DirtyBitmap(blockCount: 0).outOfSyncRanges(limit: 5), [])
        XCTAssertFalse(bitmap.isOutOfSync(block: -1))
        XCTAssertFalse(bitmap.isOutOfSync(block: 200))
    }

    /// Random operations against a plain [Bool] model: bits, count and the changed pages must agree.
    func testAgainstModel() {
        var random = MetadataTestRNG(seed: 2024)
        let blocks = 3 * Self.pageBlocks + 777
        var bitmap = DirtyBitmap(blockCount: blocks)
        var model = [Bool](repeating: false, count: blocks)
        let deviceSize = UInt64(blocks) * Self.block
        for step in 0..<400 {
            let before = bitmap.encoded()
            let start = UInt64.random(in: 0...deviceSize + 10_000, using: &random)
            let length: UInt64 = step % 10 == 0
                ? UInt64.random(in: 0...deviceSize, using: &random)
                : UInt64.random(in: 0...100_000, using: &random)
            let range = start..<start + length
            let mark = Bool.random(using: &random)
            let pages = mark ? bitmap.markOutOfSync(byteRange: range) : bitmap.markInSync(byteRange: range)
            if !range.isEmpty {
                let first = mark ? range.lowerBound / Self.block : (range.lowerBound + Self.block - 1) / Self.block
                let end = mark ? (range.upperBound + Self.block - 1) / Self.block : range.upperBound / Self.block
                if first < end {
                    for block in Int(min(first, UInt64(blocks)))..<Int(min(end, UInt64(blocks))) { model[block] = mark }
                }
            }
            let after = bitmap.encoded()
            let changedPages = (0..<bitmap.pageCount).filter { before[$0 * 4096..<($0 + 1) * 4096] != after[$0 * 4096..<($0 + 1) * 4096] }
            XCTAssertEqual(pages, changedPages, "step \(step)")
            XCTAssertEqual(bitmap.outOfSyncCount, model.filter { $0 }.count, "step \(step)")
        }
        for block in 0..<blocks where bitmap.isOutOfSync(block: block) != model[block] {
            XCTFail("block \(block) differs from the model")
            break
        }
        // Ranges reproduce the model exactly.
        var fromRanges = [Bool](repeating: false, count: blocks)
        for range in bitmap.outOfSyncRanges(limit: Int.max) {
            for block in Int(range.lowerBound / Self.block)..<Int(range.upperBound / Self.block) { fromRanges[block] = true }
        }
        XCTAssertEqual(fromRanges, model)
    }

    func testFormUnion() {
        var a = DirtyBitmap(blockCount: 100_000)
        var b = DirtyBitmap(blockCount: 100_000)
        a.markOutOfSync(byteRange: 0..<8192)
        b.markOutOfSync(byteRange: 4096..<12288)
        b.markOutOfSync(byteRange: 99_999 * 4096..<100_000 * 4096)
        XCTAssertEqual(a.formUnion(b), [0, 3])
        XCTAssertEqual(a.outOfSyncCount, 4)
        XCTAssertEqual(a.formUnion(b), [])
    }

    func testLayoutAndBitmapAgreeOnPageCount() throws {
        for backing: UInt64 in [1 << 20, 1 << 30, (128 << 20) + 4096 * 100, 1 << 40] {
            let layout = try MetadataLayout.internal(backingSize: backing)
            let bitmap = DirtyBitmap(blockCount: layout.blockCount)
            XCTAssertEqual(bitmap.pageCount, layout.bitmapPageCount)
            XCTAssertEqual(UInt64(bitmap.encoded().count), layout.bitmapSize)
        }
    }
}
