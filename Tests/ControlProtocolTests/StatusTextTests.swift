import ControlProtocol
import XCTest

/// Golden texts of `repd status` in DRBD 9's `drbdadm status` layout, one per representative state.
final class StatusTextTests: XCTestCase {
    func testConnectedPrimaryBrief() {
        XCTAssertEqual(Fixture.connectedPrimary.text(), """
            r0 role:Primary
              disk:UpToDate
              beta role:Secondary
                peer-disk:UpToDate
            """)
    }

    func testConnectedPrimaryVerbose() {
        XCTAssertEqual(Fixture.connectedPrimary.text(verbose: true, statistics: false), """
            r0 node-id:0 role:Primary suspended:no
              volume:0 minor:0 disk:UpToDate quorum:yes
              beta node-id:1 connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0
                volume:0 replication:Established peer-disk:UpToDate resync-suspended:no
            """)
    }

    func testConnectedPrimaryStatistics() {
        XCTAssertEqual(Fixture.connectedPrimary.text(verbose: false, statistics: true), """
            r0 role:Primary
              disk:UpToDate
                  read:1024 written:2048
              beta role:Secondary
                peer-disk:UpToDate
                    received:0 sent:2048
            """)
    }

    func testSyncSourceBrief() {
        XCTAssertEqual(Fixture.syncSource.text(), """
            r0 role:Primary
              disk:UpToDate
              beta role:Secondary
                replication:SyncSource peer-disk:Inconsistent done:18.49
            """)
    }

    func testSyncSourceStatistics() {
        XCTAssertEqual(Fixture.syncSource.text(verbose: false, statistics: true), """
            r0 role:Primary
              disk:UpToDate
                  read:1024 written:2048
              beta role:Secondary
                replication:SyncSource peer-disk:Inconsistent done:18.49
                    received:0 sent:180224 out-of-sync:794624
                    speed:2430KiB/s average:2252KiB/s finish:0:05:27
            """)
    }

    func testSyncSourceVerboseStatistics() {
        XCTAssertEqual(Fixture.syncSource.text(verbose: true, statistics: true), """
            r0 node-id:0 role:Primary suspended:no
                write-ordering:flush
              volume:0 minor:0 disk:UpToDate quorum:yes
                  size:974848 read:1024 written:2048 al-writes:0 bm-writes:12 upper-pending:0 lower-pending:0 al-suspended:no blocked:no
              beta node-id:1 connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:256
                volume:0 replication:SyncSource peer-disk:Inconsistent done:18.49 resync-suspended:no
                    received:0 sent:180224 out-of-sync:794624 pending:0 unacked:0 dbdt1:2.44 eta:318
                    speed:2430KiB/s average:2252KiB/s finish:0:05:27
                    # why this resync: the peer's disk was just created, ours holds data: full resync from us (rule 30)
            """)
    }

    func testSyncTargetStatistics() {
        XCTAssertEqual(Fixture.syncTarget.text(verbose: false, statistics: true), """
            r0 role:Secondary
              disk:Inconsistent
                  read:0 written:0
              alpha role:Primary
                replication:SyncTarget peer-disk:UpToDate done:18.49
                    received:180224 sent:0 out-of-sync:794624
                    speed:2430KiB/s average:2252KiB/s want:2560KiB/s finish:0:05:27
            """)
    }

    func testPausedSync() {
        XCTAssertEqual(Fixture.pausedSync.text(), """
            r0 role:Primary
              disk:UpToDate
              beta role:Secondary
                replication:PausedSyncS peer-disk:Inconsistent done:18.49 resync-suspended:user
            """)
        XCTAssertEqual(Fixture.pausedSync.text(verbose: false, statistics: true), """
            r0 role:Primary
              disk:UpToDate
                  read:1024 written:2048
              beta role:Secondary
                replication:PausedSyncS peer-disk:Inconsistent done:18.49 resync-suspended:user
                    received:0 sent:180224 out-of-sync:794624
                    speed:0KiB/s average:2252KiB/s paused-by:user
            """)
    }

    func testVerifying() {
        XCTAssertEqual(Fixture.verifying.text(verbose: false, statistics: true), """
            r0 role:Primary
              disk:UpToDate
                  read:1024 written:2048
              beta role:Secondary
                replication:VerifyS peer-disk:UpToDate done:50.00
                    received:0 sent:3904 out-of-sync:8
                    speed:8124KiB/s average:8123KiB/s finish:0:00:59 found-out-of-sync:8KiB
            """)
    }

    func testStandAloneAfterSplitBrain() {
        XCTAssertEqual(Fixture.standAloneSplitBrain.text(), """
            r0 role:Primary
              disk:UpToDate
              beta connection:StandAlone
                # split brain: both nodes changed the data while they were apart, and no after-sb policy chose a side
                # on the node whose changes are to be dropped, run: repd connect --discard-my-data r0
                # then, if the other node is StandAlone too, run there: repd connect r0
            """)
        XCTAssertEqual(Fixture.standAloneSplitBrain.text(verbose: false, statistics: true), """
            r0 role:Primary
              disk:UpToDate
                  read:1024 written:2048
              beta connection:StandAlone
                # split brain: both nodes changed the data while they were apart, and no after-sb policy chose a side
                # on the node whose changes are to be dropped, run: repd connect --discard-my-data r0
                # then, if the other node is StandAlone too, run there: repd connect r0
                peer-disk:DUnknown
                    received:0 sent:0 out-of-sync:4096
            """)
    }

    func testSplitBrainHintFallsBackToTheDefaultCommand() {
        var status = Fixture.standAloneSplitBrain
        status.connections[0].resolveCommand = nil
        XCTAssertTrue(status.text().contains("run: repd connect --discard-my-data r0\n"))
        status.connections[0].splitBrain = false
        XCTAssertFalse(status.text().contains("split brain"))
    }

    func testSecondaryAlone() {
        XCTAssertEqual(Fixture.secondaryAlone.text(), """
            r0 role:Secondary
              disk:UpToDate
              alpha connection:Connecting
              # running alone: peer alpha (10.0.0.1:7789) is not connected
            """)
    }

    func testDiskless() {
        XCTAssertEqual(Fixture.diskless.text(), """
            r0 role:Secondary
              disk:Diskless client:yes
              alpha role:Primary
                peer-disk:UpToDate
            """)
    }

    func testLastVerifyResultIsShown() {
        var status = Fixture.connectedPrimary
        status.devices[0].lastVerifyOutOfSyncKiB = 12
        XCTAssertEqual(status.text(), """
            r0 role:Primary
              disk:UpToDate
                  # the last online verify found 12 KiB out of sync; repair: repd invalidate-remote --reset-bitmap=no r0 (on the node whose data is right)
              beta role:Secondary
                peer-disk:UpToDate
            """)
        status.devices[0].lastVerifyOutOfSyncKiB = 0
        XCTAssertFalse(status.text().contains("verify"))
        XCTAssertTrue(status.text(verbose: true, statistics: false).contains("# the last online verify found no differences"))
    }

    func testSeveralResourcesAndNoneUp() {
        var other = Fixture.secondaryAlone
        other.name = "r1"
        XCTAssertEqual(ResourceStatus.text([Fixture.connectedPrimary, other], verbose: false, statistics: false, node: "alpha", runDirectory: "/run/repd"), """
            r0 role:Primary
              disk:UpToDate
              beta role:Secondary
                peer-disk:UpToDate

            r1 role:Secondary
              disk:UpToDate
              alpha connection:Connecting
              # running alone: peer alpha (10.0.0.1:7789) is not connected

            """)
        XCTAssertEqual(
            ResourceStatus.text([], verbose: false, statistics: false, node: "alpha", runDirectory: "/run/repd"),
            "# No resource is up on node alpha (no daemon in /run/repd); start one with `repd up RES`.\n")
    }

    func testSyncWithoutDetailsUsesPercentInSync() {
        var status = Fixture.connectedPrimary
        status.connections[0].peerDevices[0] = Fixture.peer("SyncSource", "Inconsistent", outOfSync: 487_424, percentInSync: 50)
        XCTAssertTrue(status.text().hasSuffix("    replication:SyncSource peer-disk:Inconsistent done:50.00"))
    }
}

/// repd's block device (issue 15): a comment line under the disk, and `repd-device` in JSON.
final class BlockDeviceStatusTests: XCTestCase {
    func withDevice(readOnly: Bool) -> ResourceStatus {
        var status = Fixture.connectedPrimary
        status.devices[0].blockDevice = ResourceStatus.BlockDevice(
            path: "/dev/drbd1", target: "/dev/nbd0", method: "kernel nbd", readOnly: readOnly,
            links: ["/dev/drbd1", "/dev/repd/by-res/r0"])
        return status
    }

    func testTextNamesThePathTheDeviceAndTheMethod() {
        XCTAssertEqual(withDevice(readOnly: false).text(), """
            r0 role:Primary
              disk:UpToDate
                  # device:/dev/drbd1 -> /dev/nbd0 (kernel nbd)
              beta role:Secondary
                peer-disk:UpToDate
            """)
        XCTAssertTrue(withDevice(readOnly: true).text().contains("# device:/dev/drbd1 -> /dev/nbd0 (kernel nbd) read-only"))
    }

    func testJSONKeysAndRoundTrip() throws {
        let status = withDevice(readOnly: true)
        let line = String(decoding: try ControlCodec.encodeLine(status), as: UTF8.self)
        XCTAssertTrue(line.contains(#""repd-device":{"links":["/dev/drbd1","/dev/repd/by-res/r0"],"method":"kernel nbd","path":"/dev/drbd1","read-only":true,"target":"/dev/nbd0"}"#), line)
        XCTAssertEqual(try ControlCodec.decode(ResourceStatus.self, from: line), status)
        XCTAssertFalse(String(decoding: try ControlCodec.encodeLine(Fixture.connectedPrimary), as: UTF8.self).contains("repd-device"),
                       "device none: no key")
    }
}
