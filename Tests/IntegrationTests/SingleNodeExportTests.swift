import CNBD
import Foundation
import XCTest

/// A real single-node daemon driven by libnbd.
final class SingleNodeExportTests: XCTestCase {
    var harness: DaemonHarness!

    override func setUpWithError() throws {
        harness = try DaemonHarness()
        try harness.startPrimary()
    }

    override func tearDown() {
        harness?.cleanUp()
        harness = nil
    }

    func fileBytes(_ path: String, offset: UInt64, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        return Array(try handle.read(upToCount: count) ?? Data())
    }

    func testHandshakeAdvertisesWhatWeImplement() throws {
        let c = try NBDClient(uri: harness.uri)
        XCTAssertEqual(c.size, 64 << 20)
        XCTAssertEqual(nbd_can_flush(c.handle), 1)
        XCTAssertEqual(nbd_can_fua(c.handle), 1)
        XCTAssertEqual(nbd_can_trim(c.handle), 1)
        XCTAssertEqual(nbd_can_zero(c.handle), 1)
        XCTAssertEqual(nbd_can_fast_zero(c.handle), 1)
        XCTAssertEqual(nbd_can_multi_conn(c.handle), 1)
        XCTAssertEqual(nbd_can_cache(c.handle), 1)
        XCTAssertEqual(nbd_can_df(c.handle), 1)
        XCTAssertEqual(nbd_can_meta_context(c.handle, "base:allocation"), 1)
        XCTAssertEqual(nbd_get_structured_replies_negotiated(c.handle), 1)
        XCTAssertEqual(nbd_get_block_size(c.handle, Int32(LIBNBD_SIZE_PREFERRED)), 4096)
        XCTAssertEqual(nbd_get_block_size(c.handle, Int32(LIBNBD_SIZE_MAXIMUM)), 32 << 20)
    }

    func testSixtyFourWritesInFlightLandOnDisk() throws {
        let c = try NBDClient(uri: harness.uri)
        let writes = (0..<64).map { i in (offset: UInt64(i) * 65536 + UInt64(i % 7) * 512, bytes: pattern(16384 + i * 512, seed: UInt64(i + 1))) }
        XCTAssertEqual(try c.inFlight(writes: writes), Array(repeating: 0, count: 64))
        let reads = try c.inFlight(reads: writes.map { (offset: $0.offset, count: $0.bytes.count) })
        for (i, w) in writes.enumerated() {
            XCTAssertEqual(reads[i], w.bytes, "read back of write \(i)")
        }
        try c.flush()
        for w in writes.prefix(8) {
            XCTAssertEqual(try fileBytes(harness.dataPath, offset: w.offset, count: w.bytes.count), w.bytes)
        }
    }

    func testFUAFlushTrimAndZeroes() throws {
        let c = try NBDClient(uri: harness.uri)
        let data = pattern(1 << 20, seed: 42)
        try c.pwrite(data, offset: 4 << 20, flags: UInt32(LIBNBD_CMD_FLAG_FUA))
        XCTAssertEqual(try fileBytes(harness.dataPath, offset: 4 << 20, count: data.count), data)
        try c.flush()
        try c.trim(count: 256 << 10, offset: 4 << 20)
        XCTAssertEqual(try c.pread(count: 256 << 10, offset: 4 << 20), [UInt8](repeating: 0, count: 256 << 10))
        try c.zero(count: 128 << 10, offset: (4 << 20) + (512 << 10), flags: UInt32(LIBNBD_CMD_FLAG_NO_HOLE))
        try c.zero(count: 64 << 10, offset: (4 << 20) + (768 << 10), flags: UInt32(LIBNBD_CMD_FLAG_FAST_ZERO))
        let after = try c.pread(count: 1 << 20, offset: 4 << 20)
        XCTAssertEqual(Array(after[(512 << 10)..<(640 << 10)]), [UInt8](repeating: 0, count: 128 << 10))
        XCTAssertEqual(Array(after[(768 << 10)..<(832 << 10)]), [UInt8](repeating: 0, count: 64 << 10))
        XCTAssertEqual(Array(after[(256 << 10)..<(512 << 10)]), Array(data[(256 << 10)..<(512 << 10)]), "untouched part kept")
        XCTAssertEqual(Array(after[(896 << 10)...]), Array(data[(896 << 10)...]))
    }

    func testBlockStatusSeesHolesAndData() throws {
        let c = try NBDClient(uri: harness.uri)
        try c.pwrite(pattern(1 << 20, seed: 3), offset: 8 << 20)
        try c.flush()
        let extents = try c.blockStatus(count: 16 << 20, offset: 0)
        XCTAssertFalse(extents.isEmpty)
        var offset: UInt64 = 0
        var sawHole = false, sawData = false
        for (length, flags) in extents {
            let end = offset + UInt64(length)
            if offset < (9 << 20) && end > (8 << 20) {
                XCTAssertEqual(flags & UInt32(LIBNBD_STATE_HOLE), 0, "written range reported as hole at \(offset)")
                sawData = true
            }
            if end <= (8 << 20) && flags & UInt32(LIBNBD_STATE_HOLE) != 0 { sawHole = true }
            offset = end
        }
        XCTAssertTrue(sawHole && sawData, "extents: \(extents)")
        let one = try c.blockStatus(count: 16 << 20, offset: 0, flags: UInt32(LIBNBD_CMD_FLAG_REQ_ONE))
        XCTAssertEqual(one.count, 1)
    }

    func testMultiConnSharesOneConsistentDevice() throws {
        let clients = try (0..<4).map { _ in try NBDClient(uri: harness.uri) }
        let threads = (0..<4).map { i in
            Thread {
                for j in 0..<16 {
                    try? clients[i].pwrite(pattern(65536, seed: UInt64(i * 100 + j)), offset: UInt64(i * 16 + j) * 65536)
                }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(10_000) }
        try clients[0].flush()
        for i in 0..<4 {
            for j in [0, 15] {
                XCTAssertEqual(try clients[(i + 1) % 4].pread(count: 65536, offset: UInt64(i * 16 + j) * 65536), pattern(65536, seed: UInt64(i * 100 + j)))
            }
        }
    }

    func testBadRequestsGetErrorsAndTheConnectionLives() throws {
        let c = try NBDClient(uri: harness.uri)
        XCTAssertThrowsError(try c.pread(count: 4096, offset: UInt64(c.size) - 1024)) { error in
            XCTAssertEqual((error as? NBDClient.Failure)?.errno, EINVAL)
        }
        // libnbd checks ranges itself; disable its strictness to send the bad write for real.
        nbd_set_strict_mode(c.handle, 0)
        XCTAssertThrowsError(try c.pwrite([1, 2, 3], offset: UInt64(c.size) - 1)) { error in
            XCTAssertEqual((error as? NBDClient.Failure)?.errno, ENOSPC)
        }
        let data = pattern(4096, seed: 9)
        try c.pwrite(data, offset: 0)
        XCTAssertEqual(try c.pread(count: 4096, offset: 0), data, "the connection still serves after errors")
    }
}
