import ControlProtocol
import XCTest

/// The `repd events` differ: drbdsetup events2 lines for each kind of change, and none without one.
final class StatusEventTests: XCTestCase {
    func lines(_ events: [StatusEvent]) -> String {
        events.map(\.line).joined(separator: "\n")
    }

    func testInitialState() {
        XCTAssertEqual(lines(StatusEvent.initialState([Fixture.connectedPrimary])), """
            exists resource name:r0 role:Primary suspended:no
            exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Secondary
            exists device name:r0 volume:0 minor:0 disk:UpToDate client:no quorum:yes
            exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no
            exists -
            """)
        XCTAssertEqual(lines(StatusEvent.initialState([])), "exists -")
    }

    func testInitialStateOfASyncAndASplitBrain() {
        var splitBrain = Fixture.standAloneSplitBrain
        splitBrain.name = "r1"
        XCTAssertEqual(lines(StatusEvent.initialState([Fixture.syncTarget, splitBrain])), """
            exists resource name:r0 role:Secondary suspended:no
            exists connection name:r0 peer-node-id:0 conn-name:alpha connection:Connected role:Primary
            exists device name:r0 volume:0 minor:0 disk:Inconsistent client:no quorum:yes
            exists peer-device name:r0 peer-node-id:0 conn-name:alpha volume:0 replication:SyncTarget peer-disk:UpToDate peer-client:no resync-suspended:no done:18.49
            exists resource name:r1 role:Primary suspended:no
            exists connection name:r1 peer-node-id:1 conn-name:beta connection:StandAlone role:Unknown sync-state:SplitBrain
            exists device name:r1 volume:0 minor:0 disk:UpToDate client:no quorum:yes
            exists peer-device name:r1 peer-node-id:1 conn-name:beta volume:0 replication:Off peer-disk:DUnknown peer-client:no resync-suspended:no
            exists -
            """)
    }

    func testNothingChangedNoEvents() {
        XCTAssertEqual(StatusEvent.events(from: Fixture.connectedPrimary, to: Fixture.connectedPrimary), [])
        XCTAssertEqual(StatusEvent.events(from: Fixture.syncSource, to: Fixture.syncSource), [])
        // Counters alone are no state change.
        var busier = Fixture.connectedPrimary
        busier.devices[0].written += 4096
        busier.connections[0].peerDevices[0].sent += 4096
        busier.pid = 1
        XCTAssertEqual(StatusEvent.events(from: Fixture.connectedPrimary, to: busier), [])
    }

    func testRoleChange() {
        var demoted = Fixture.connectedPrimary
        demoted.role = "Secondary"
        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.connectedPrimary, to: demoted)), """
            change resource name:r0 role:Secondary
            """)
    }

    func testDiskChange() {
        var outdated = Fixture.connectedPrimary
        outdated.devices[0].diskState = "Outdated"
        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.connectedPrimary, to: outdated)), """
            change device name:r0 volume:0 minor:0 disk:Outdated
            """)
    }

    func testConnectionLost() {
        var alone = Fixture.connectedPrimary
        alone.connections[0].connectionState = "Connecting"
        alone.connections[0].peerRole = "Unknown"
        alone.connections[0].peerDevices[0].replicationState = "Off"
        alone.connections[0].peerDevices[0].peerDiskState = "DUnknown"
        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.connectedPrimary, to: alone)), """
            change connection name:r0 peer-node-id:1 conn-name:beta connection:Connecting role:Unknown
            change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Off peer-disk:DUnknown peer-client:no
            """)
    }

    func testSyncStartsProgressesAndPauses() {
        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.connectedPrimary, to: Fixture.syncSource)), """
            change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncSource peer-disk:Inconsistent peer-client:no done:18.49
            """)

        var further = Fixture.syncSource
        further.connections[0].peerDevices[0].outOfSync = 697_136
        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.syncSource, to: further)), """
            change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 done:28.49
            """)

        var barely = Fixture.syncSource
        barely.connections[0].peerDevices[0].outOfSync -= 4
        XCTAssertEqual(StatusEvent.events(from: Fixture.syncSource, to: barely), [], "18.4877 and 18.4873 both print as 18.49")

        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.syncSource, to: Fixture.pausedSync)), """
            change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:PausedSyncS resync-suspended:user done:18.49
            """)
    }

    func testSyncFinishes() {
        var done = Fixture.connectedPrimary
        done.connections[0].peerDevices[0].sent = 974_848
        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.syncSource, to: done)), """
            change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:UpToDate peer-client:no
            """)
    }

    func testSplitBrain() {
        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.connectedPrimary, to: Fixture.standAloneSplitBrain)), """
            change connection name:r0 peer-node-id:1 conn-name:beta connection:StandAlone role:Unknown sync-state:SplitBrain
            change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Off peer-disk:DUnknown peer-client:no
            """)
        // The daemon may flag the split brain after the state change.
        var unflagged = Fixture.standAloneSplitBrain
        unflagged.connections[0].splitBrain = nil
        XCTAssertEqual(lines(StatusEvent.events(from: unflagged, to: Fixture.standAloneSplitBrain)), """
            change connection name:r0 peer-node-id:1 conn-name:beta sync-state:SplitBrain
            """)
    }

    func testCreateAndDestroy() {
        XCTAssertEqual(lines(StatusEvent.events(from: nil, to: Fixture.diskless)), """
            create resource name:r0 role:Secondary suspended:no
            create connection name:r0 peer-node-id:0 conn-name:alpha connection:Connected role:Primary
            create device name:r0 volume:0 minor:0 disk:Diskless client:yes quorum:yes
            create peer-device name:r0 peer-node-id:0 conn-name:alpha volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no
            """)
        XCTAssertEqual(lines(StatusEvent.destroyed(Fixture.connectedPrimary)), """
            destroy peer-device name:r0 peer-node-id:1 conn-name:beta volume:0
            destroy connection name:r0 peer-node-id:1 conn-name:beta
            destroy device name:r0 volume:0
            destroy resource name:r0
            """)
        var noPeer = Fixture.connectedPrimary
        noPeer.connections = []
        XCTAssertEqual(lines(StatusEvent.events(from: Fixture.connectedPrimary, to: noPeer)), """
            destroy peer-device name:r0 peer-node-id:1 conn-name:beta volume:0
            destroy connection name:r0 peer-node-id:1 conn-name:beta
            """)
        XCTAssertEqual(lines(StatusEvent.events(from: noPeer, to: Fixture.connectedPrimary)), """
            create connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Secondary
            create peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no
            """)
    }

    func testJSONForm() {
        let sync = StatusEvent.events(from: Fixture.connectedPrimary, to: Fixture.syncSource)
        XCTAssertEqual(sync.map(\.json), [
            #"{"action":"change","conn-name":"beta","done":18.49,"name":"r0","object":"peer-device","peer-client":false,"#
                + #""peer-disk":"Inconsistent","peer-node-id":1,"replication":"SyncSource","volume":0}"#,
        ])
        XCTAssertEqual(
            StatusEvent.initialState([Fixture.connectedPrimary]).map(\.json), [
                #"{"action":"exists","name":"r0","object":"resource","role":"Primary","suspended":"no"}"#,
                #"{"action":"exists","conn-name":"beta","connection":"Connected","name":"r0","object":"connection","peer-node-id":1,"role":"Secondary"}"#,
                #"{"action":"exists","client":false,"disk":"UpToDate","minor":0,"name":"r0","object":"device","quorum":true,"volume":0}"#,
                #"{"action":"exists","conn-name":"beta","name":"r0","object":"peer-device","peer-client":false,"peer-disk":"UpToDate","#
                    + #""peer-node-id":1,"replication":"Established","resync-suspended":"no","volume":0}"#,
                #"{"action":"exists","object":"-"}"#,
            ])
    }
}
