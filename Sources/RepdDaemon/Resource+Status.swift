import ControlProtocol
import RepdCore
import RepdSystem

extension Resource {
    func status() -> ResourceStatus {
        let m = mutable.withLockedValue { $0 }
        let s = m.state
        let blockKiB = Geometry.blockSize / 1024
        let outOfSyncKiB = UInt64(m.bitmap.outOfSyncCount) * blockKiB
        let sizeKiB = m.exportSize / 1024
        let device = ResourceStatus.Device(
            minor: config.local.minor ?? 0, diskState: s.disk.rawValue, size: sizeKiB,
            read: m.readBytes / 1024, written: m.writtenBytes / 1024, alWrites: m.alWrites, bmWrites: m.bitmapWrites,
            upperPending: m.inFlight, lowerPending: m.pendingWrites, backingDisk: config.local.disk)
        var connections: [ResourceStatus.Connection] = []
        var notes: [String] = []
        if let peer = config.peer {
            let percent = sizeKiB == 0 ? 100 : Double(sizeKiB - min(sizeKiB, outOfSyncKiB)) * 100 / Double(sizeKiB)
            let unacked = m.localWrites.values.filter { $0.replicated && !$0.peerDone }.count
            var peerDevice = ResourceStatus.PeerDevice(
                replicationState: s.replication.rawValue, peerDiskState: s.peerDisk.rawValue,
                received: m.receivedBytes / 1024, sent: m.sentBytes / 1024, outOfSync: outOfSyncKiB,
                pending: m.peerApplies.count, unacked: unacked, percentInSync: (percent * 100).rounded() / 100)
            peerDevice.hasSyncDetails = m.peer?.sync != nil
            let rsInFlight = m.peer?.sync?.inFlightBytes ?? 0
            connections.append(ResourceStatus.Connection(
                peerNodeID: peer.nodeId ?? 1, name: peer.names.first ?? "peer", connectionState: s.connection.rawValue,
                peerRole: s.peerRole.rawValue, apInFlight: unacked, rsInFlight: rsInFlight / 1024, peerDevices: [peerDevice],
                replicationProtocol: config.net.protocol.rawValue, peerAddress: "\(peer.address)"))
            if let splitBrain = m.splitBrain, s.connection != .connected {
                notes.append("\(splitBrain). To resolve: \(splitBrainRecovery)")
            } else if s.connection != .connected {
                notes.append("running alone: peer \(peer.names.first ?? "peer") (\(peer.address)) is not connected")
            }
            if let message = m.linkMessage, m.splitBrain == nil, s.connection != .connected {
                notes.append(message)
            }
            if s.connection == .standAlone && m.splitBrain == nil {
                notes.append("StandAlone: the link stays down until an operator resolves the situation")
            }
        }
        if s.disk == .inconsistent && m.peer?.sync == nil {
            notes.append("disk Inconsistent: make one node the sync source with `repd primary --force \(config.name)`")
        }
        return ResourceStatus(
            name: config.name, nodeID: config.local.nodeId ?? 0, role: s.role.rawValue, devices: [device],
            connections: connections, nbdURI: run.nbdURI, node: node, pid: ProcessSupport.currentPID,
            message: notes.isEmpty ? nil : notes.joined(separator: "; "))
    }
}
