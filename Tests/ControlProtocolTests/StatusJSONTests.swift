import ControlProtocol
import Foundation
import XCTest

/// Golden JSON of `repd status --json`: DRBD 9's `drbdsetup status --json` schema plus repd's keys,
/// keys sorted as `ControlCodec.prettyJSON` writes them.
final class StatusJSONTests: XCTestCase {
    func testConnectedPrimary() throws {
        XCTAssertEqual(try ControlCodec.prettyJSON([Fixture.connectedPrimary]), """
            [
              {
                "connections" : [
                  {
                    "ap-in-flight" : 0,
                    "congested" : false,
                    "connection-state" : "Connected",
                    "name" : "beta",
                    "peer-node-id" : 1,
                    "peer-role" : "Secondary",
                    "peer_devices" : [
                      {
                        "has-online-verify-details" : false,
                        "has-sync-details" : false,
                        "out-of-sync" : 0,
                        "peer-client" : false,
                        "peer-disk-state" : "UpToDate",
                        "pending" : 0,
                        "percent-in-sync" : 100,
                        "received" : 0,
                        "replication-state" : "Established",
                        "resync-suspended" : "no",
                        "sent" : 2048,
                        "unacked" : 0,
                        "volume" : 0
                      }
                    ],
                    "repd-peer-address" : "10.0.0.2:7789",
                    "repd-protocol" : "C",
                    "rs-in-flight" : 0
                  }
                ],
                "devices" : [
                  {
                    "al-suspended" : false,
                    "al-writes" : 0,
                    "blocked" : "no",
                    "bm-writes" : 0,
                    "client" : false,
                    "disk-state" : "UpToDate",
                    "lower-pending" : 0,
                    "minor" : 0,
                    "quorum" : true,
                    "read" : 1024,
                    "repd-backing-disk" : "/dev/vg0/r0-backing",
                    "size" : 974848,
                    "upper-pending" : 0,
                    "volume" : 0,
                    "written" : 2048
                  }
                ],
                "name" : "r0",
                "nbd-uri" : "nbd+unix:///r0?socket=/run/repd/r0.sock",
                "node-id" : 0,
                "repd-node" : "alpha",
                "repd-pid" : 4242,
                "role" : "Primary",
                "suspended" : false,
                "write-ordering" : "flush"
              }
            ]
            """)
    }

    func testSyncSource() throws {
        XCTAssertEqual(try ControlCodec.prettyJSON([Fixture.syncSource]), """
            [
              {
                "connections" : [
                  {
                    "ap-in-flight" : 0,
                    "congested" : false,
                    "connection-state" : "Connected",
                    "name" : "beta",
                    "peer-node-id" : 1,
                    "peer-role" : "Secondary",
                    "peer_devices" : [
                      {
                        "db/dt [MiB/s]" : 2.2,
                        "db0/dt0 [MiB/s]" : 2.37,
                        "db1/dt1 [MiB/s]" : 2.44,
                        "estimated-seconds-to-finish" : 318,
                        "has-online-verify-details" : false,
                        "has-sync-details" : true,
                        "out-of-sync" : 794624,
                        "peer-client" : false,
                        "peer-disk-state" : "Inconsistent",
                        "pending" : 0,
                        "percent-in-sync" : 18.49,
                        "percent-resync-done" : 18.49,
                        "received" : 0,
                        "repd-eta-seconds" : 327,
                        "repd-sync-decision" : "the peer's disk was just created, ours holds data: full resync from us (rule 30)",
                        "repd-sync-rate-avg-kib" : 2252,
                        "repd-sync-rate-kib" : 2430,
                        "replication-state" : "SyncSource",
                        "resync-suspended" : "no",
                        "rs-db0-sectors" : 48600,
                        "rs-db1-sectors" : 15000,
                        "rs-dt-start-ms" : 80000,
                        "rs-dt0-ms" : 10000,
                        "rs-dt1-ms" : 3000,
                        "rs-failed" : 0,
                        "rs-paused-ms" : 0,
                        "rs-same-csum" : 0,
                        "rs-total" : 1949696,
                        "sent" : 180224,
                        "unacked" : 0,
                        "volume" : 0,
                        "want" : 0
                      }
                    ],
                    "repd-peer-address" : "10.0.0.2:7789",
                    "repd-protocol" : "C",
                    "rs-in-flight" : 256
                  }
                ],
                "devices" : [
                  {
                    "al-suspended" : false,
                    "al-writes" : 0,
                    "blocked" : "no",
                    "bm-writes" : 12,
                    "client" : false,
                    "disk-state" : "UpToDate",
                    "lower-pending" : 0,
                    "minor" : 0,
                    "quorum" : true,
                    "read" : 1024,
                    "repd-backing-disk" : "/dev/vg0/r0-backing",
                    "size" : 974848,
                    "upper-pending" : 0,
                    "volume" : 0,
                    "written" : 2048
                  }
                ],
                "name" : "r0",
                "nbd-uri" : "nbd+unix:///r0?socket=/run/repd/r0.sock",
                "node-id" : 0,
                "repd-node" : "alpha",
                "repd-pid" : 4242,
                "role" : "Primary",
                "suspended" : false,
                "write-ordering" : "flush"
              }
            ]
            """)
    }

    func testEveryFixtureRoundTrips() throws {
        let all = [
            Fixture.connectedPrimary, Fixture.syncSource, Fixture.syncTarget, Fixture.pausedSync, Fixture.verifying,
            Fixture.standAloneSplitBrain, Fixture.secondaryAlone, Fixture.diskless,
        ]
        for status in all {
            let line = try ControlCodec.encodeLine(status)
            let decoded = try ControlCodec.decode(ResourceStatus.self, from: String(decoding: line, as: UTF8.self))
            XCTAssertEqual(decoded, status, status.name)
        }
    }

    /// JSON written before the sync, split-brain and generation keys existed still decodes, and
    /// keys this version does not know are ignored.
    func testOlderAndNewerJSONDecode() throws {
        let older = try ControlCodec.prettyJSON(Fixture.connectedPrimary)
        XCTAssertFalse(older.contains("rs-total") || older.contains("repd-split-brain") || older.contains("repd-current-uuid"))
        XCTAssertEqual(try ControlCodec.decode(ResourceStatus.self, from: older), Fixture.connectedPrimary)
        let newer = older.replacingOccurrences(of: "\"name\" : \"r0\",", with: "\"name\" : \"r0\", \"repd-future-key\" : [1, 2],")
        XCTAssertNotEqual(newer, older)
        XCTAssertEqual(try ControlCodec.decode(ResourceStatus.self, from: newer), Fixture.connectedPrimary)
    }

    func testVerifyAndSplitBrainKeys() throws {
        let verify = try ControlCodec.prettyJSON(Fixture.verifying)
        for key in ["\"ov-left\" : 974848", "\"ov-position\" : 974848", "\"ov-start-sector\" : 0", "\"ov-skipped\" : 0",
                    "\"repd-ov-out-of-sync-kib\" : 8", "\"has-online-verify-details\" : true", "\"percent-resync-done\" : 50"] {
            XCTAssertTrue(verify.contains(key), key)
        }
        XCTAssertFalse(verify.contains("rs-failed") || verify.contains("ov-stop-sector"))
        let splitBrain = try ControlCodec.prettyJSON(Fixture.standAloneSplitBrain)
        XCTAssertTrue(splitBrain.contains("\"repd-split-brain\" : true"))
        XCTAssertTrue(splitBrain.contains("\"repd-resolve-command\" : \"repd connect --discard-my-data r0\""))
        XCTAssertFalse(splitBrain.contains("has-sync-details\" : true"))
    }

    func testClearSyncDetailsRemovesEveryKey() throws {
        var status = Fixture.syncSource
        status.connections[0].peerDevices[0].clearSyncDetails()
        let json = try ControlCodec.prettyJSON(status)
        let keys = [
            "rs-total", "rs-dt", "rs-db", "rs-paused", "rs-failed", "rs-same", "ov-", "want", "db", "estimated",
            "percent-resync-done", "repd-sync", "repd-eta",
        ]
        for key in keys {
            XCTAssertFalse(json.contains("\"" + key), key)
        }
        XCTAssertTrue(json.contains("\"has-sync-details\" : false"))
    }
}
