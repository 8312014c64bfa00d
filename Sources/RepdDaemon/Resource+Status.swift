import ControlProtocol
import RepdCore
import RepdEngine
import RepdSystem

/// `repd status` from a copy of the engine's state, taken under the lock.
extension Resource {
    func status() -> ResourceStatus {
        let (e, latency) = state.withLockedValue { ($0.engine, $0.latency) }
        let s = e.state
        let m = e.metadata
        let outOfSyncKiB = Geometry.kibibytes(ofBlocks: UInt64(m.bitmap.outOfSyncCount))
        let sizeKiB = e.exportSize / 1024
        var device = ResourceStatus.Device(
            minor: config.local.minor ?? 0, diskState: s.disk.rawValue, size: sizeKiB,
            read: e.counters.readBytes / 1024, written: e.counters.writtenBytes / 1024,
            alWrites: e.counters.activityLogWrites, bmWrites: e.counters.bitmapWrites,
            upperPending: e.inFlight, lowerPending: e.writes.pendingWrites, backingDisk: config.local.disk)
        device.currentUUID = GenerationIdentifiers.text(m.superblock.generation.current)
        device.bitmapUUID = GenerationIdentifiers.text(m.superblock.generation.bitmap)
        device.historyUUIDs = m.superblock.generation.history.map { GenerationIdentifiers.text($0) }
        device.metadataFlags = GenerationExplanation.Flags(m.superblock.flags).names
        device.lastVerifyOutOfSyncKiB = e.link.lastVerify?.outOfSyncKiB
        device.lastVerifyFinishedAt = e.link.lastVerify?.at
        device.blockDevice = attachment.status()
        if let failure = e.diskFailure {
            let verb = failure.cause == .operatorDetach ? "detached" : "failed"
            device.diskFailure = "\(verb): \(failure.summary)" + (failure.at > 0 ? " at \(ProcessSupport.utcText(failure.at))" : "")
        }
        var connections: [ResourceStatus.Connection] = []
        var notes: [String] = []
        if let peer = config.peer {
            let percent = sizeKiB == 0 ? 100 : Double(sizeKiB - min(sizeKiB, outOfSyncKiB)) * 100 / Double(sizeKiB)
            let unacked = e.unacknowledgedWrites
            var peerDevice = ResourceStatus.PeerDevice(
                replicationState: s.replication.rawValue, peerDiskState: s.peerDisk.rawValue,
                received: e.counters.receivedBytes / 1024, sent: e.counters.sentBytes / 1024, outOfSync: outOfSyncKiB,
                pending: e.peerWritesInFlight, unacked: unacked, percentInSync: (percent * 100).rounded() / 100)
            peerDevice.hasSyncDetails = e.session?.resync != nil
            let now = ProcessSupport.monotonicNanoseconds()
            if let sync = e.session?.resync {
                let samples = sync.samples
                func window(_ count: Int) -> (ms: UInt64, kib: UInt64) {
                    guard let first = samples.suffix(count).first, let last = samples.last, last.at > first.at else { return (0, 0) }
                    return ((last.at - first.at) / 1_000_000, Geometry.kibibytes(ofBlocks: last.done - min(last.done, first.done)))
                }
                let long = window(300), short = window(30)
                var paused = sync.pausedNanoseconds
                if let since = sync.pausedSince { paused += now - min(now, since) }
                let want: UInt64? = sync.controller.map { $0.isDynamic ? UInt64($0.settings.maxRate / 1024) : UInt64($0.settings.fixedRate / 1024) }
                peerDevice.setSyncDetails(SyncRun(
                    kind: .resync, totalKiB: Geometry.kibibytes(ofBlocks: max(sync.totalBlocks, sync.doneBlocks)),
                    elapsedMs: (now - min(now, sync.startedAt)) / 1_000_000, pausedMs: paused / 1_000_000,
                    windowMs: long.ms, windowKiB: long.kib, shortWindowMs: short.ms, shortWindowKiB: short.kib,
                    sameChecksumKiB: Geometry.kibibytes(ofBlocks: sync.sameBlocks), wantKiBPerSecond: want,
                    decision: e.session?.decision?.explanation))
                var suspended: [String] = []
                if e.link.userPausedSync { suspended.append("user") }
                if e.session?.peerPausedSync == true { suspended.append("peer") }
                peerDevice.resyncSuspended = suspended.isEmpty ? "no" : suspended.joined(separator: ",")
            } else if let verify = e.session?.verify, verify.source {
                let elapsed = (now - min(now, verify.startedAt)) / 1_000_000
                peerDevice.setSyncDetails(SyncRun(
                    kind: .verify, totalKiB: Geometry.kibibytes(ofBlocks: verify.totalBlocks), elapsedMs: elapsed,
                    windowMs: elapsed, windowKiB: Geometry.kibibytes(ofBlocks: verify.doneBlocks),
                    verifyLeftKiB: Geometry.kibibytes(ofBlocks: verify.totalBlocks - min(verify.totalBlocks, verify.doneBlocks)),
                    verifyPosition: UInt64(verify.cursor) * Geometry.blockSize,
                    verifyOutOfSyncKiB: Geometry.kibibytes(ofBlocks: verify.outOfSyncBlocks)))
            }
            let rsInFlight = e.session?.resync?.inFlightBytes ?? 0
            var connection = ResourceStatus.Connection(
                peerNodeID: peer.nodeId ?? 1, name: peer.names.first ?? "peer", connectionState: s.connection.rawValue,
                peerRole: s.peerRole.rawValue, apInFlight: unacked, rsInFlight: rsInFlight / 1024, peerDevices: [peerDevice],
                replicationProtocol: config.net.protocol.rawValue, peerAddress: "\(peer.address)")
            if e.link.splitBrain != nil && e.link.standAloneAfterSplitBrain && s.connection != .connected {
                connection.splitBrain = true
                connection.resolveCommand = "repd secondary \(config.name) && repd connect --discard-my-data \(config.name)"
            }
            connections.append(connection)
            if let splitBrain = e.link.splitBrain, s.connection != .connected {
                notes.append(splitBrain)
            } else if s.connection != .connected {
                notes.append("running alone: peer \(peer.names.first ?? "peer") (\(peer.address)) is not connected")
            }
            if let message = e.link.message, e.link.splitBrain == nil, s.connection != .connected {
                notes.append(message)
            }
            if s.connection == .standAlone && e.link.splitBrain == nil {
                notes.append("StandAlone: the link stays down until an operator resolves the situation")
            }
        }
        let peerName = config.peer?.names.first ?? "the peer"
        if !s.hasDisk && s.disk != .negotiating {
            if s.detachedDataAhead {
                notes.append("Diskless, and this node's detached disk holds newer data than \(peerName): `repd attach \(config.name)` "
                    + "resyncs it; `repd primary --force \(config.name)` goes on with \(peerName)'s older data")
            } else {
                notes.append(s.servedByPeer ? "Diskless: reads and writes go to \(peerName)"
                    : "Diskless, and no UpToDate peer is connected: no data is accessible on this node")
            }
        }
        if let blocked = e.link.resyncBlocked {
            notes.append(blocked)
        } else if e.session?.pendingSyncStart != nil {
            notes.append("a resync waits for its before-resync handler")
        }
        if let fence = e.fence {
            switch fence.phase {
            case .running:
                notes.append("fencing (\(config.disk.fencing)): the fence-peer handler runs: \(fence.reason)"
                    + (fence.freezesIO ? "; application I/O is suspended meanwhile" : ""))
            case .frozen(let reason):
                notes.append("fencing failed: \(reason); I/O stays suspended until `repd resume-io \(config.name)`")
            }
        }
        if e.suspendedCount > 0 {
            notes.append("\(e.suspendedCount) requests are suspended until data is accessible again or `repd resume-io \(config.name)`")
        }
        if s.disk == .inconsistent && e.session?.resync == nil {
            notes.append("disk Inconsistent: make one node the sync source with `repd primary --force \(config.name)`")
        }
        var status = ResourceStatus(
            name: config.name, nodeID: config.local.nodeId ?? 0, role: s.role.rawValue, devices: [device],
            connections: connections, nbdURI: run.nbdURI, node: node, pid: ProcessSupport.currentPID,
            message: notes.isEmpty ? nil : notes.joined(separator: "; "),
            suspendedReasons: e.suspendReasons.isEmpty ? nil : e.suspendReasons.map(\.rawValue))
        status.latency = latency
        return status
    }
}
