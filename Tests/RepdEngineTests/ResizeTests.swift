import PeerProtocol
import RepdCore
@testable import RepdEngine
import XCTest

/// `repd resize`: the disk grew; the replicated size follows once both nodes grew.
final class ResizeTests: XCTestCase {
    static let grown: UInt64 = 2 * EngineHarness.size

    func layout(_ usable: UInt64) -> MetadataLayout {
        try! MetadataLayout.external(backingSize: usable, metaDeviceSize: nil, index: nil)
    }

    func lastReply(_ h: EngineHarness) -> (Bool, String)? {
        h.actions.compactMap { if case .reply(_, let ok, let message) = $0 { (ok, message) } else { nil } }.last
    }

    func testConnectedThePeerMustGrowTooThenTheNewAreaIsResynced() {
        var h = EngineHarness()
        h.connectedPrimary()
        h.feed(.resize(50, layout: layout(Self.grown), assumeClean: false))
        guard let persisted = h.actions.first(where: { if case .persist = $0 { true } else { false } }),
              case .persist(_, let write) = persisted else { return XCTFail("no metadata write: \(h.actions)") }
        XCTAssertEqual(write.superblock?.layout.usableSize, Self.grown, "the new layout is written")
        XCTAssertFalse(write.bitmapPages.isEmpty, "the new bitmap pages are written")
        XCTAssertTrue(write.syncBitmap, "and synced before the superblock that names the new layout")
        XCTAssertEqual(h.engine.exportSize, EngineHarness.size, "the peer has not grown: the replicated size stays")
        XCTAssertEqual(lastReply(h)?.0, true)
        XCTAssertTrue(lastReply(h)?.1.contains("until the peer's disk has grown too") == true, "\(lastReply(h)!)")
        guard case .state(let report)? = h.sent.last(where: { if case .state = $0 { true } else { false } }) else {
            return XCTFail("the peer was not told the new size")
        }
        XCTAssertEqual(report.usableSize, Self.grown)
        XCTAssertEqual(h.engine.metadata.bitmap.outOfSyncCount, Int((Self.grown - EngineHarness.size) / Geometry.blockSize))

        // The peer grew too: the size follows, and the Primary resyncs the new area.
        h.clear()
        var peer = h.peerReport(generation: h.engine.metadata.superblock.generation)
        peer.usableSize = Self.grown
        h.feed(.peerMessage(EngineHarness.connection, .state(peer)))
        XCTAssertEqual(h.engine.exportSize, Self.grown)
        XCTAssertTrue(h.sent.contains { if case .resyncRequest(senderIsSource: true, full: false) = $0 { true } else { false } }, "\(h.actions)")
        XCTAssertNotNil(h.engine.session?.resync)
    }

    func testAssumeCleanMarksNothing() {
        var h = EngineHarness(peer: nil)
        h.feed(.resize(51, layout: layout(Self.grown), assumeClean: true))
        XCTAssertEqual(h.engine.exportSize, Self.grown, "without a peer the size grows at once")
        XCTAssertEqual(h.engine.metadata.bitmap.outOfSyncCount, 0)
        XCTAssertEqual(h.engine.metadata.bitmap.blockCount, Int(Self.grown / Geometry.blockSize))
    }

    func testShrinkingAndNothingToDoAreRefused() {
        var h = EngineHarness()
        h.feed(.resize(52, layout: layout(EngineHarness.size), assumeClean: false))
        XCTAssertEqual(lastReply(h)?.0, false)
        XCTAssertTrue(lastReply(h)?.1.contains("nothing to resize") == true)
        h.feed(.resize(53, layout: layout(EngineHarness.size / 2), assumeClean: false))
        XCTAssertEqual(lastReply(h)?.0, false)
        XCTAssertTrue(lastReply(h)?.1.contains("shrinking is not supported") == true)
        XCTAssertEqual(h.engine.configuration.usableSize, EngineHarness.size)
    }
}
