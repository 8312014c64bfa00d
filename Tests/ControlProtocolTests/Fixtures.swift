import ControlProtocol

/// Representative states of resource r0 on nodes alpha (node-id 0) and beta (node-id 1), with a
/// 952 MiB device. The figures are chosen so that the golden texts can be checked by hand:
/// a full sync of 974,848 KiB with 794,624 KiB (776 MiB) left is 18.49 % done; 24,300 KiB in the
/// last 10 s is 2,430 KiB/s, which finishes the rest in 327 s (0:05:27).
enum Fixture {
    static let sizeKiB: UInt64 = 974_848
    static let leftKiB: UInt64 = 794_624
    static let uriAlpha = "nbd+unix:///r0?socket=/run/repd/r0.sock"

    static func device(_ disk: String, read: UInt64 = 1024, written: UInt64 = 2048, bmWrites: UInt64 = 0) -> ResourceStatus.Device {
        ResourceStatus.Device(
            minor: 0, diskState: disk, size: sizeKiB, read: read, written: written, alWrites: 0, bmWrites: bmWrites,
            upperPending: 0, lowerPending: 0, backingDisk: "/dev/vg0/r0-backing")
    }

    static func peer(
        _ replication: String, _ peerDisk: String, received: UInt64 = 0, sent: UInt64 = 0, outOfSync: UInt64 = 0,
        percentInSync: Double = 100
    ) -> ResourceStatus.PeerDevice {
        ResourceStatus.PeerDevice(
            replicationState: replication, peerDiskState: peerDisk, received: received, sent: sent, outOfSync: outOfSync,
            pending: 0, unacked: 0, percentInSync: percentInSync)
    }

    static func connection(
        _ state: String, peerRole: String, name: String = "beta", peerNodeID: Int = 1, rsInFlight: Int = 0,
        _ peers: [ResourceStatus.PeerDevice]
    ) -> ResourceStatus.Connection {
        ResourceStatus.Connection(
            peerNodeID: peerNodeID, name: name, connectionState: state, peerRole: peerRole, apInFlight: 0, rsInFlight: rsInFlight,
            peerDevices: peers, replicationProtocol: "C", peerAddress: name == "beta" ? "10.0.0.2:7789" : "10.0.0.1:7789")
    }

    static func resource(
        role: String, nodeID: Int = 0, node: String = "alpha", _ device: ResourceStatus.Device,
        _ connections: [ResourceStatus.Connection], message: String? = nil
    ) -> ResourceStatus {
        ResourceStatus(
            name: "r0", nodeID: nodeID, role: role, devices: [device], connections: connections,
            nbdURI: uriAlpha, node: node, pid: 4242, message: message)
    }

    /// The percentage in sync with 794,624 KiB out of sync, as the daemon computes it.
    static let percentInSyncWhileSyncing = 18.49

    /// A resync that has run for 80 s: 24,300 KiB in the last 10 s, 7,500 KiB in the last 3 s.
    /// Paused for the last `paused` ms (at least 10 s): nothing moved within the windows.
    static func resyncRun(want: UInt64? = nil, paused: UInt64 = 0) -> SyncRun {
        SyncRun(
            kind: .resync, totalKiB: sizeKiB, elapsedMs: 80_000 + paused, pausedMs: paused, windowMs: 10_000,
            windowKiB: paused > 0 ? 0 : 24_300, shortWindowMs: 3_000, shortWindowKiB: paused > 0 ? 0 : 7_500, wantKiBPerSecond: want,
            decision: "the peer's disk was just created, ours holds data: full resync from us (rule 30)")
    }

    // MARK: - The states

    /// alpha, Primary, connected to beta (Secondary), both UpToDate.
    static var connectedPrimary: ResourceStatus {
        resource(
            role: "Primary", device("UpToDate"),
            [connection("Connected", peerRole: "Secondary", [peer("Established", "UpToDate", sent: 2048)])])
    }

    /// alpha, Primary and SyncSource of a full sync to beta, 18.49 % done.
    static var syncSource: ResourceStatus {
        var peerDevice = peer("SyncSource", "Inconsistent", sent: 180_224, outOfSync: leftKiB, percentInSync: percentInSyncWhileSyncing)
        peerDevice.setSyncDetails(resyncRun())
        return resource(
            role: "Primary", device("UpToDate", bmWrites: 12),
            [connection("Connected", peerRole: "Secondary", rsInFlight: 256, [peerDevice])])
    }

    /// beta, Secondary and SyncTarget of the same sync, with a resync controller aiming at 2,560 KiB/s.
    static var syncTarget: ResourceStatus {
        var peerDevice = peer("SyncTarget", "UpToDate", received: 180_224, outOfSync: leftKiB, percentInSync: percentInSyncWhileSyncing)
        peerDevice.setSyncDetails(resyncRun(want: 2_560))
        return resource(
            role: "Secondary", nodeID: 1, node: "beta", device("Inconsistent", read: 0, written: 0),
            [connection("Connected", peerRole: "Primary", name: "alpha", peerNodeID: 0, [peerDevice])])
    }

    /// alpha's sync to beta, paused by `repd pause-sync` 20 s ago.
    static var pausedSync: ResourceStatus {
        var peerDevice = peer("PausedSyncS", "Inconsistent", sent: 180_224, outOfSync: leftKiB, percentInSync: percentInSyncWhileSyncing)
        peerDevice.resyncSuspended = "user"
        peerDevice.setSyncDetails(resyncRun(paused: 20_000))
        return resource(role: "Primary", device("UpToDate"), [connection("Connected", peerRole: "Secondary", [peerDevice])])
    }

    /// alpha verifying against beta: half of the device compared, 8 KiB found different.
    static var verifying: ResourceStatus {
        var peerDevice = peer("VerifyS", "UpToDate", sent: 3_904, outOfSync: 8)
        peerDevice.setSyncDetails(SyncRun(
            kind: .verify, totalKiB: sizeKiB, elapsedMs: 60_000, windowMs: 10_000, windowKiB: 81_240,
            verifyLeftKiB: sizeKiB / 2, verifyPosition: sizeKiB / 2 * 1024, verifyOutOfSyncKiB: 8))
        return resource(role: "Primary", device("UpToDate"), [connection("Connected", peerRole: "Secondary", [peerDevice])])
    }

    /// alpha after a split brain that no policy resolved: StandAlone, Primary, 4 MiB changed since.
    static var standAloneSplitBrain: ResourceStatus {
        var link = connection("StandAlone", peerRole: "Unknown", [peer("Off", "DUnknown", outOfSync: 4_096, percentInSync: 99.58)])
        link.splitBrain = true
        link.resolveCommand = "repd connect --discard-my-data r0"
        return resource(role: "Primary", device("UpToDate"), [link])
    }

    /// beta, Secondary, its peer unreachable.
    static var secondaryAlone: ResourceStatus {
        resource(
            role: "Secondary", nodeID: 1, node: "beta", device("UpToDate", read: 0, written: 0),
            [connection("Connecting", peerRole: "Unknown", name: "alpha", peerNodeID: 0, [peer("Off", "DUnknown")])],
            message: "running alone: peer alpha (10.0.0.1:7789) is not connected")
    }

    /// beta without a disk of its own (`disk none`), reading and writing through alpha.
    static var diskless: ResourceStatus {
        var local = device("Diskless", read: 0, written: 0)
        local.client = true
        return resource(
            role: "Secondary", nodeID: 1, node: "beta", local,
            [connection("Connected", peerRole: "Primary", name: "alpha", peerNodeID: 0, [peer("Established", "UpToDate")])])
    }
}
