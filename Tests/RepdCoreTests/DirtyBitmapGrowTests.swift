import RepdCore
import XCTest

final class DirtyBitmapGrowTests: XCTestCase {
    func testGrowKeepsTheBitsAndAddsCleanPages() {
        var bitmap = DirtyBitmap(blockCount: 40_000)      // two pages (32768 blocks each)
        bitmap.markOutOfSync(byteRange: 4096 * 39_990..<4096 * 40_000)
        let newPages = bitmap.grow(to: 100_000)             // four pages
        XCTAssertEqual(newPages, [2, 3])
        XCTAssertEqual(bitmap.blockCount, 100_000)
        XCTAssertEqual(bitmap.outOfSyncCount, 10)
        XCTAssertTrue(bitmap.isOutOfSync(block: 39_999))
        XCTAssertFalse(bitmap.isOutOfSync(block: 40_000))
        bitmap.markOutOfSync(byteRange: 4096 * 40_000..<4096 * 100_000)
        XCTAssertEqual(bitmap.outOfSyncCount, 60_010)
        // What is written decodes back to the same bitmap.
        let bytes = (0..<bitmap.pageCount).flatMap { bitmap.page($0) }
        XCTAssertEqual(try DirtyBitmap(decoding: bytes, blockCount: 100_000), bitmap)
    }
}
