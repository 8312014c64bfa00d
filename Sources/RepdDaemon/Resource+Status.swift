import ControlProtocol
import RepdCore
import RepdSystem

extension Resource {
    func status() -> ResourceStatus {
        let m = mutable.withLockedValue { $0 }
        let s = m.state
        let blockKiB = Geometry.blockSize / 1024
        let outOfSyncKiB = UInt64(m.bitmap.outOfSyncCount) * blockKiB
        let sizeKiB = size / 1024
        let device = ResourceStatus.Device(
            minor: config.local.minor ?? 0, diskState: s.disk.rawValue, size: sizeKiB,
            read: m.readBytes / 1024, written: m.writtenBytes / 1024, alWrites: 0, bmWrites: m.bitmapWrites,
            upperPending: m.inFlight, lowerPending: m.pendingWrites, backingDisk: config.local.disk)
        var connections: [ResourceStatus.Connection] = []
        var message: String?
        if let peer = config.peer {
            let percent = sizeKiB == 0 ? 100 : Double(sizeKiB - min(sizeKiB, outOfSyncKiB)) * 100 / Double(sizeKiB)
            let peerDevice = ResourceStatus.PeerDevice(
                replicationState: s.replication.rawValue, peerDiskState: s.peerDisk.rawValue,
                received: 0, sent: 0, outOfSync: outOfSyncKiB, pending: 0, unacked: 0,
                percentInSync: (percent * 100).rounded() / 100)
            connections.append(ResourceStatus.Connection(
                peerNodeID: peer.nodeId ?? 1, name: peer.names.first ?? "peer", connectionState: s.connection.rawValue,
                peerRole: s.peerRole.rawValue, apInFlight: 0, rsInFlight: 0, peerDevices: [peerDevice],
                replicationProtocol: config.net.protocol.rawValue, peerAddress: "\(peer.address)"))
            if s.connection != .connected {
                message = "running alone: peer \(peer.names.first ?? "peer") (\(peer.address)) is not connected"
            }
        }
        if s.disk == .inconsistent {
            message = (message.map { $0 + "; " } ?? "") + "disk Inconsistent: make one node the sync source with `repd primary --force \(config.name)`"
        }
        return ResourceStatus(
            name: config.name, nodeID: config.local.nodeId ?? 0, role: s.role.rawValue, devices: [device],
            connections: connections, nbdURI: run.nbdURI, node: node, pid: ProcessSupport.currentPID, message: message)
    }
}
