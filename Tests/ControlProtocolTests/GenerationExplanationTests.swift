import ControlProtocol
import RepdCore
import XCTest

/// Golden texts of `repd show-gi`.
final class GenerationExplanationTests: XCTestCase {
    let older: UInt64 = 0xC0A5_C8F5_D18A_B7F8

    func testConnectedPrimaryInSync() {
        let explanation = GenerationExplanation(
            resource: "r0", generation: GenerationIdentifiers(current: 0x7C2B_41E0_AF8E_7A77, bitmap: 0, history: [older, 0]),
            flags: .init(consistent: true, wasUpToDate: true, primaryIndicator: true), diskState: "UpToDate", outOfSyncKiB: 0)
        XCTAssertEqual(explanation.text(), """
            r0: generation identifiers of this node's disk
              current  7C2B41E0AF8E7A77
              bitmap   0000000000000000
              history  C0A5C8F5D18AB7F8 0000000000000000
              flags    consistent was-up-to-date primary-indicator
              disk     UpToDate (the resource is up), 0 KiB marked out of sync
              in one line: 7C2B41E0AF8E7A77:0000000000000000:C0A5C8F5D18AB7F8:0000000000000000:1:1:1:0:0

            What this means:
              - current: this disk holds data generation 7C2B41E0AF8E7A77. It began while this node was Primary (the lowest bit is set).
              - bitmap 0: not tracking changes, because the peer held the same data when the nodes were last connected; nothing has to be copied from here.
              - history: older generations, newest first (C0A5C8F5D18AB7F8). A peer still at one of them fell further behind than a bitmap covers and gets a full sync; a peer that moved on from one of them on its own is a split brain.
              - consistent and was up to date: this disk held the newest data when it was last attached.
              - primary indicator: this node is Primary.
            """)
    }

    func testCrashedPrimaryTrackingChanges() {
        var flags = MetadataFlags([.consistent, .wasUpToDate, .primaryIndicator, .crashedPrimary])
        flags.remove(.activityLogClean)
        let explanation = GenerationExplanation(
            resource: "r0",
            generation: GenerationIdentifiers(current: 0x5A3C_19D2_E4F6_0B31, bitmap: 0x7C2B_41E0_AF8E_7A76, history: [older, 0x1D4E_0A9B_3C2F_8E10]),
            flags: .init(flags), diskState: nil, outOfSyncKiB: 16_384)
        XCTAssertEqual(explanation.text(), """
            r0: generation identifiers of this node's disk
              current  5A3C19D2E4F60B31
              bitmap   7C2B41E0AF8E7A76
              history  C0A5C8F5D18AB7F8 1D4E0A9B3C2F8E10
              flags    consistent was-up-to-date primary-indicator crashed-primary
              disk     not attached (the resource is not up; read from the metadata), 16384 KiB marked out of sync
              in one line: 5A3C19D2E4F60B31:7C2B41E0AF8E7A76:C0A5C8F5D18AB7F8:1D4E0A9B3C2F8E10:1:1:1:1:0

            What this means:
              - current: this disk holds data generation 5A3C19D2E4F60B31. It began while this node was Primary (the lowest bit is set).
              - bitmap 7C2B41E0AF8E7A76: tracking changes since generation 7C2B41E0AF8E7A76, the data the peer is expected to hold. A peer still at that generation catches up by copying only the 16384 KiB marked out of sync.
              - history: older generations, newest first (C0A5C8F5D18AB7F8, 1D4E0A9B3C2F8E10). A peer still at one of them fell further behind than a bitmap covers and gets a full sync; a peer that moved on from one of them on its own is a split brain.
              - consistent and was up to date: this disk held the newest data when it was last attached.
              - crashed primary: this node was Primary when it last stopped without `repd down` (crash, kill, power loss). The areas named in its activity log are resynced to the peer at the next connect.
              - activity log not clean: the last stop was not clean; `repd up` replays it and marks the areas it names for resync.
            """)
    }

    func testFreshMetadata() {
        let explanation = GenerationExplanation(
            resource: "r0", generation: GenerationIdentifiers(current: GenerationIdentifiers.justCreated),
            flags: .init(MetadataFlags()), diskState: nil, outOfSyncKiB: 0)
        XCTAssertEqual(explanation.text(), """
            r0: generation identifiers of this node's disk
              current  0000000000000004
              bitmap   0000000000000000
              history  0000000000000000 0000000000000000
              flags    none
              disk     not attached (the resource is not up; read from the metadata), 0 KiB marked out of sync
              in one line: 0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0:0

            What this means:
              - current: fresh metadata (create-md): this disk has never held a data generation. Run `repd primary --force r0` on the node whose data is to be kept (the peer then gets a full sync), or, for two empty disks, `repd new-current-uuid --clear-bitmap r0` to skip that sync.
              - bitmap 0: not tracking changes, because the peer held the same data when the nodes were last connected; nothing has to be copied from here.
              - history: empty: no older generations are recorded.
              - not consistent: no resync to this disk has completed (or one was interrupted). Its data must not be used until a resync from an UpToDate peer finishes.
            """)
    }

    func testOutdatedSecondaryAndPendingResync() {
        let explanation = GenerationExplanation(
            resource: "r0", generation: GenerationIdentifiers(current: 0x7C2B_41E0_AF8E_7A76, history: [older]),
            flags: .init(consistent: true, wasUpToDate: false, activityLogClean: true, peerOutdated: false, fullSyncNeeded: true),
            diskState: nil, outOfSyncKiB: 974_848)
        XCTAssertEqual(explanation.meaning(), [
            "current: this disk holds data generation 7C2B41E0AF8E7A76. It began while this node was Secondary (the lowest bit is clear).",
            "bitmap 0, yet 974848 KiB are marked out of sync: this disk is waiting for a resync (an interrupted resync to this node, "
                + "or an invalidate); they are copied at the next connect.",
            "history: older generations, newest first (C0A5C8F5D18AB7F8). A peer still at one of them fell further behind than a "
                + "bitmap covers and gets a full sync; a peer that moved on from one of them on its own is a split brain.",
            "consistent, but not marked up to date (Outdated): the peer may hold newer data. Promote this node only if the peer's "
                + "data is lost, with `repd primary --force r0`.",
            "activity log clean: the last stop was clean; nothing to replay at `repd up`.",
            "full sync needed: the whole device is resynced at the next connect.",
        ])
    }

    func testFromARunningResourcesStatus() {
        var status = Fixture.syncSource
        status.devices[0].currentUUID = "7C2B41E0AF8E7A77"
        status.devices[0].bitmapUUID = "0000000000000004"
        status.devices[0].historyUUIDs = ["0000000000000000", "0000000000000000"]
        status.devices[0].metadataFlags = ["consistent", "was-up-to-date", "primary-indicator"]
        let explanation = GenerationExplanation(status: status)
        XCTAssertEqual(explanation, GenerationExplanation(
            resource: "r0", generation: GenerationIdentifiers(current: 0x7C2B_41E0_AF8E_7A77, bitmap: 4),
            flags: .init(consistent: true, wasUpToDate: true, primaryIndicator: true), diskState: "UpToDate",
            outOfSyncKiB: Fixture.leftKiB))
        XCTAssertEqual(explanation?.meaning()[1], "bitmap 0000000000000004: tracking changes since the disks were created, the data "
            + "the peer is expected to hold. A peer still at that generation catches up by copying only the 794624 KiB marked out of sync.")
        XCTAssertNil(GenerationExplanation(status: Fixture.syncSource), "no identifiers in the status")
    }

    func testFlagNamesMatchDumpMD() {
        let all = MetadataFlags(rawValue: 0xFF)
        XCTAssertEqual(GenerationExplanation.Flags(all).names, all.names)
        XCTAssertEqual(GenerationExplanation.Flags(names: all.names), GenerationExplanation.Flags(all))
    }
}
