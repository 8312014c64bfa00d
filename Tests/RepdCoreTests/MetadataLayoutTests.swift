import XCTest
@testable import RepdCore

final class MetadataLayoutTests: XCTestCase {
    static let KiB: UInt64 = 1024
    static let MiB: UInt64 = 1024 * 1024
    static let GiB: UInt64 = 1024 * 1024 * 1024
    static let TiB: UInt64 = 1024 * 1024 * 1024 * 1024

    func testSizeFormulas() {
        XCTAssertEqual(Geometry.bitmapSize(forUsableSize: 0), 0)
        XCTAssertEqual(Geometry.bitmapSize(forUsableSize: 4096), 4096)
        XCTAssertEqual(Geometry.bitmapSize(forUsableSize: 128 * Self.MiB), 4096)
        XCTAssertEqual(Geometry.bitmapSize(forUsableSize: 128 * Self.MiB + 4096), 8192)
        XCTAssertEqual(Geometry.bitmapSize(forUsableSize: Self.GiB), 32768)
        XCTAssertEqual(Geometry.bitmapSize(forUsableSize: Self.TiB), 32 * Self.MiB)
        XCTAssertEqual(Geometry.metadataSize(forUsableSize: Self.GiB), 4096 + 262_144 + 32768)
        XCTAssertEqual(Geometry.activityLogAreaSize, 256 * Self.KiB)
    }

    /// (backing size, usable size, metadata offset, metadata size)
    static let internalTable: [(String, UInt64, UInt64, UInt64, UInt64)] = [
        ("1 MiB", MiB, 778_240, 778_240, 270_336),
        ("64 MiB", 64 * MiB, 66_838_528, 66_838_528, 270_336),
        ("1 GiB", GiB, 1_073_442_816, 1_073_442_816, 299_008),
        ("1 GiB + 123", GiB + 123, 1_073_442_816, 1_073_442_816, 299_008),
        ("1 TiB", TiB, 1_099_477_807_104, 1_099_477_807_104, 33_820_672),
        // 128 MiB of data needs one bitmap page, one block more would need two: a 4 KiB gap stays unused.
        ("page boundary", 128 * MiB + 270_336 + 4096, 128 * MiB, 128 * MiB + 4096, 270_336),
        ("smallest", 4096 + 270_336, 4096, 4096, 270_336),
    ]

    func testInternalLayoutTable() throws {
        for (name, backing, usable, offset, size) in Self.internalTable {
            let layout = try MetadataLayout.internal(backingSize: backing)
            XCTAssertEqual(layout.usableSize, usable, name)
            XCTAssertEqual(layout.metadataOffset, offset, name)
            XCTAssertEqual(layout.metadataSize, size, name)
            XCTAssertEqual(layout.activityLogOffset, 4096, name)
            XCTAssertEqual(layout.activityLogSize, 262_144, name)
            XCTAssertEqual(layout.bitmapOffset, 4096 + 262_144, name)
            XCTAssertEqual(layout.bitmapSize, size - 4096 - 262_144, name)
            XCTAssertEqual(layout.blockCount, Int(usable / 4096), name)
            XCTAssertNoThrow(try layout.validate(), name)
            XCTAssertEqual(layout.bitmapPageCount, DirtyBitmap(blockCount: layout.blockCount).pageCount, name)
        }
    }

    func testInternalLayoutIsMaximalForRandomSizes() throws {
        var random = MetadataTestRNG(seed: 42)
        var sizes: [UInt64] = (0..<300).map { _ in UInt64.random(in: 274_432...(4 * Self.TiB), using: &random) }
        sizes += (0..<300).map { _ in UInt64.random(in: 274_432...(600 * Self.MiB), using: &random) }
        sizes += [UInt64.max, UInt64.max / 2]
        for backing in sizes {
            let layout = try MetadataLayout.internal(backingSize: backing)
            let alignedEnd = backing / 4096 * 4096
            let usable = layout.usableSize
            XCTAssertEqual(usable % 4096, 0)
            XCTAssertGreaterThan(usable, 0)
            XCTAssertLessThanOrEqual(usable + Geometry.metadataSize(forUsableSize: usable), alignedEnd, "\(backing)")
            let next = usable + 4096
            let (total, overflow) = next.addingReportingOverflow(Geometry.metadataSize(forUsableSize: next))
            XCTAssertTrue(overflow || total > alignedEnd, "not maximal for \(backing)")
            XCTAssertEqual(layout.metadataOffset + layout.metadataSize, alignedEnd, "area ends at the aligned end")
            XCTAssertEqual(layout.metadataOffset % 4096, 0)
            XCTAssertGreaterThanOrEqual(layout.metadataOffset, usable, "area does not overlap data")
            XCTAssertEqual(layout.metadataSize, Geometry.metadataSize(forUsableSize: usable))
        }
    }

    func testInternalTooSmall() {
        let needed: UInt64 = 4096 + 270_336
        XCTAssertThrowsMetadataError(.deviceTooSmall(needed: needed, available: 8192)) {
            () throws(MetadataError) in try MetadataLayout.internal(backingSize: 8192)
        }
        XCTAssertThrowsMetadataError(.deviceTooSmall(needed: needed, available: 0)) {
            () throws(MetadataError) in try MetadataLayout.internal(backingSize: 0)
        }
        XCTAssertThrowsMetadataError(.deviceTooSmall(needed: needed, available: needed - 1)) {
            () throws(MetadataError) in try MetadataLayout.internal(backingSize: needed - 1)
        }
        XCTAssertNoThrow(try MetadataLayout.internal(backingSize: needed))
    }

    func testExternalWholeDevice() throws {
        let layout = try MetadataLayout.external(backingSize: Self.GiB + 100, metaDeviceSize: nil, index: nil)
        XCTAssertEqual(layout.usableSize, Self.GiB)
        XCTAssertEqual(layout.metadataOffset, 0)
        XCTAssertEqual(layout.metadataSize, 299_008)
        XCTAssertEqual(layout.activityLogOffset, 4096)
        XCTAssertEqual(layout.bitmapOffset, 266_240)
        XCTAssertEqual(layout.bitmapSize, 32768)
        XCTAssertNoThrow(try layout.validate())

        XCTAssertEqual(try MetadataLayout.external(backingSize: Self.GiB, metaDeviceSize: 299_008, index: nil), layout)
        XCTAssertThrowsMetadataError(.deviceTooSmall(needed: 299_008, available: 299_007)) {
            () throws(MetadataError) in try MetadataLayout.external(backingSize: Self.GiB, metaDeviceSize: 299_007, index: nil)
        }
        XCTAssertThrowsMetadataError(.deviceTooSmall(needed: 4096, available: 4095)) {
            () throws(MetadataError) in try MetadataLayout.external(backingSize: 4095, metaDeviceSize: nil, index: nil)
        }
    }

    func testExternalIndexed() throws {
        let slot: UInt64 = 128 * Self.MiB
        let first = try MetadataLayout.external(backingSize: Self.GiB, metaDeviceSize: nil, index: 0)
        XCTAssertEqual(first.metadataOffset, 0)
        XCTAssertEqual(first.metadataSize, slot)
        XCTAssertEqual(first.usableSize, Self.GiB)
        XCTAssertEqual(first.bitmapOffset, 266_240)
        XCTAssertEqual(first.bitmapSize, 32768)
        XCTAssertNoThrow(try first.validate())

        let fourth = try MetadataLayout.external(backingSize: Self.GiB, metaDeviceSize: 4 * slot, index: 3)
        XCTAssertEqual(fourth.metadataOffset, 402_653_184)
        XCTAssertEqual(fourth.metadataSize, slot)
        XCTAssertEqual(fourth.superblockOffset, 402_653_184)
        XCTAssertEqual(fourth.activityLogSlotOffset(1), 402_653_184 + 4096 + 4096)
        XCTAssertEqual(fourth.bitmapPageOffset(2), 402_653_184 + 266_240 + 8192)

        XCTAssertThrowsMetadataError(.deviceTooSmall(needed: 4 * slot, available: 4 * slot - 1)) {
            () throws(MetadataError) in try MetadataLayout.external(backingSize: Self.GiB, metaDeviceSize: 4 * slot - 1, index: 3)
        }
        // A regular file that may still be extended: no size to check against.
        XCTAssertEqual(try MetadataLayout.external(backingSize: Self.GiB, metaDeviceSize: nil, index: 3), fourth)
    }

    func testIndexedSlotCapacity() throws {
        let maximum: UInt64 = 4_389_322_358_784
        XCTAssertEqual(MetadataLayout.maximumIndexedUsableSize, maximum)
        let full = try MetadataLayout.external(backingSize: maximum + 4095, metaDeviceSize: nil, index: 1)
        XCTAssertEqual(full.usableSize, maximum)
        XCTAssertEqual(full.bitmapOffset + full.bitmapSize, full.metadataSize, "bitmap fills the slot exactly")
        XCTAssertNoThrow(try full.validate())
        XCTAssertThrowsMetadataError(.tooLargeForIndexedSlot(maximumUsable: maximum)) {
            () throws(MetadataError) in try MetadataLayout.external(backingSize: maximum + 4096, metaDeviceSize: nil, index: 0)
        }
        XCTAssertThrowsMetadataError(.tooLargeForIndexedSlot(maximumUsable: maximum)) {
            () throws(MetadataError) in try MetadataLayout.external(backingSize: 8 * Self.TiB, metaDeviceSize: nil, index: 3)
        }
        XCTAssertNotNil(metadataError { () throws(MetadataError) in
            try MetadataLayout.external(backingSize: Self.GiB, metaDeviceSize: nil, index: -1)
        })
        XCTAssertNotNil(metadataError { () throws(MetadataError) in
            try MetadataLayout.external(backingSize: Self.GiB, metaDeviceSize: nil, index: Int.max)
        })
    }

    func testValidateRejectsInconsistentLayouts() throws {
        let good = try MetadataLayout.internal(backingSize: Self.GiB)
        let cases: [(String, (inout MetadataLayout) -> Void)] = [
            ("bitmap offset outside area", { $0.bitmapOffset = $0.metadataSize }),
            ("bitmap end outside area", { $0.bitmapSize += 4096 }),
            ("bitmap too small", { $0.bitmapSize -= 4096; $0.metadataSize -= 4096 }),
            ("activity log over superblock", { $0.activityLogOffset = 0 }),
            ("activity log outside area", { $0.activityLogOffset = $0.metadataSize - 4096 }),
            ("overlap", { $0.bitmapOffset = 8192 }),
            ("unaligned usable size", { $0.usableSize += 1 }),
            ("zero usable size", { $0.usableSize = 0 }),
            ("unaligned area", { $0.metadataOffset += 512 }),
            ("unaligned bitmap", { $0.bitmapOffset += 1 }),
            ("empty activity log", { $0.activityLogSize = 0 }),
            ("overflowing offset", { $0.bitmapOffset = UInt64.max - 4095 }),
            ("overflowing area", { $0.metadataOffset = UInt64.max - 4095 }),
        ]
        for (name, change) in cases {
            var layout = good
            change(&layout)
            guard case .corrupt = metadataError({ () throws(MetadataError) in try layout.validate() }) else {
                XCTFail("\(name): expected corrupt")
                continue
            }
        }
    }
}
