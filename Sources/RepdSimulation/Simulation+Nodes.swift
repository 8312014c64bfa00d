import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine

/// One simulated node: its engine (nil while powered off), disk, metadata and what is in flight.
struct NodeRuntime {
    let node: SimNode
    var engine: Engine?
    var incarnation = 0
    var disk: SimulatedDisk
    var metadata: SimulatedMetadata
    /// The link stays down (DRBD's StandAlone) until the engine asks to connect again.
    var standAlone = false
    /// Writes issued to the disk and not completed: a power loss may keep any of their blocks.
    var writesInFlight: [IOToken: LocalWrite] = [:]
    var metadataQueueFreeAt: UInt64 = 0
    var nextRequest: ClientRequestID = 1
    var nextCommand: CommandID = 1
    var workloadUntil: UInt64 = 0
    var clientScheduled = false
    /// Application requests not answered yet.
    var requests: [ClientRequestID: ClientRequest] = [:]
    /// Blocks with a write of this node's application in flight (a file system never overlaps its own).
    var busyBlocks = Set<Int>()
    /// The engine let go of the disk: any I/O it issues to it is a bug.
    var detached = false
    /// The daemon's record that keeps a failed disk out of use: the next start is Diskless.
    var failedRecord: DiskFailure?
    /// The last detach after a read error could not record its bitmap: the next attach resyncs all.
    var farewellLost = false
    /// The disk answers nothing until then (a stuck disk).
    var stalledUntil: UInt64 = 0
    /// The `repd attach` command waiting for its answer.
    var attachCommand: CommandID?
    /// The protocol and resync rate of the last `repd adjust` (the resource file as changed).
    var adjusted: (replication: ReplicationMode, resyncRate: Int)?
    var adjustedAt: UInt64 = 0

    init(node: SimNode, blockCount: Int, superblock: Superblock, pageCount: Int) {
        self.node = node
        self.disk = SimulatedDisk(blockCount: blockCount)
        self.metadata = SimulatedMetadata(superblock: superblock, pageCount: pageCount)
    }
}

enum ClientRequest {
    /// `connection`: the one the node was connected on when the write was issued.
    case write(range: Range<UInt64>, tags: [UInt64], issuedAt: UInt64, connection: ConnectionID?)
    case read(range: Range<UInt64>, issuedAt: UInt64, checked: Bool)
    case flush(issuedAt: UInt64)

    var issuedAt: UInt64 {
        switch self {
        case .write(_, _, let t, _), .read(_, let t, _), .flush(let t): t
        }
    }

    var summary: String {
        switch self {
        case .write(let range, _, _, _): "write \(range.lowerBound)+\(range.count)"
        case .read(let range, _, _): "read \(range.lowerBound)+\(range.count)"
        case .flush: "flush"
        }
    }
}

extension Simulation {
    // MARK: power

    func boot(_ node: SimNode) {
        var runtime = nodes[node.rawValue]
        let (superblock, bitmap, replay) = runtime.metadata.load(blockCount: scenario.blockCount)
        var engine: Engine
        if runtime.failedRecord != nil || superblock.flags.contains(.diskFailed) {
            // As the daemon: a disk that failed stays out until the operator attaches it.
            engine = Engine(configuration: configuration(for: node), disklessBecause: runtime.failedRecord, seed: random.next())
            runtime.detached = true
        } else {
            engine = Engine(configuration: configuration(for: node), superblock: superblock, bitmap: bitmap,
                            activityLogReplay: replay, seed: random.next())
            runtime.detached = false
        }
        runtime.incarnation += 1
        runtime.standAlone = false
        let actions = engine.start(now: now, unixTime: 1_800_000_000 + now / 1_000_000_000)
        runtime.engine = engine
        nodes[node.rawValue] = runtime
        note("\(node) starts (incarnation \(runtime.incarnation))")
        // As the daemon does: the first metadata write completes before anything is served.
        for action in actions {
            if case .persist(let token, let write) = action {
                applyMetadata(write, on: node)
                deliver(.persisted(token, nil), to: node, incarnation: runtime.incarnation)
            } else {
                carryOut(action, from: node)
            }
        }
        queue.push(at: now + latency(10_000_000, 100_000_000), .tick(node, incarnation: runtime.incarnation))
    }

    func crash(_ node: SimNode, downFor nanoseconds: UInt64) {
        var runtime = nodes[node.rawValue]
        guard runtime.engine != nil else { return }
        note("\(node) loses power")
        ledger.crashed(node, at: now)
        lastCrash[node.rawValue] = now
        // Writes in flight may have reached the page cache in part.
        for (_, write) in runtime.writesInFlight.sorted(by: { $0.key < $1.key }) {
            var partial = write
            partial.segments = write.segments.filter { _ in random.next() & 1 == 1 }
            runtime.disk.apply(partial)
        }
        runtime.writesInFlight.removeAll()
        if let watched = watchBlock { note("watch: \(node) loses power with block \(watched) = \(ledger.describe(runtime.disk.current(watched)))") }
        runtime.disk.crash(&random)
        if let watched = watchBlock { note("watch: after the power loss \(node)'s block \(watched) = \(ledger.describe(runtime.disk.current(watched)))") }
        runtime.metadata.crash(&random)
        runtime.engine = nil
        runtime.incarnation += 1
        runtime.requests.removeAll()
        runtime.busyBlocks.removeAll()
        runtime.metadataQueueFreeAt = now
        nodes[node.rawValue] = runtime
        if let live = network.live { cutConnection(live, peerNoticesAfter: latency(1_000_000, 1_500_000_000)) }
        network.believed[node.rawValue] = nil
        queue.push(at: now + nanoseconds, .restart(node))
    }

    // MARK: the link

    func linkCheck() {
        guard network.live == nil, now >= network.partitionedUntil,
              network.believed[0] == nil, network.believed[1] == nil,
              nodes.allSatisfy({ $0.engine != nil && !$0.standAlone }) else { return }
        // Both sides learn of it before any message can arrive on it (the handshake comes first).
        let at = now + latency(1_000_000, 20_000_000)
        let id = network.open(announcedAt: at)
        for node in SimNode.allCases {
            network.believed[node.rawValue] = id
            let incarnation = nodes[node.rawValue].incarnation
            queue.push(at: at,
                       .engine(node, incarnation: incarnation, .peerConnected(id, peerNode: node.other.name, localResolves: node == .alpha)))
        }
        note("connection \(id) established")
    }

    /// Breaks a connection; each side learns of it after the messages that still arrive.
    func cutConnection(_ id: ConnectionID, peerNoticesAfter delay: UInt64) {
        guard let lastDeliveries = network.cut(id, now: now, random: &random) else { return }
        note("connection \(id) breaks")
        for node in SimNode.allCases where network.believed[node.rawValue] == id {
            let incarnation = nodes[node.rawValue].incarnation
            queue.push(at: lastDeliveries[node.rawValue] + delay, .peerLost(id, node, incarnation: incarnation))
        }
    }

    // MARK: actions

    func carryOut(_ action: Action, from node: SimNode) {
        let incarnation = nodes[node.rawValue].incarnation
        if nodes[node.rawValue].detached {
            switch action {
            case .readLocal, .writeLocal, .syncLocal, .persist:
                return violate("no I/O to a detached disk", "\(node) issued \(action) after its disk was detached")
            default: break
            }
        }
        switch action {
        case .readLocal(let token, let range, let kind):
            queue.push(at: diskTime(node) + ioLatency(), .ioComplete(node, incarnation: incarnation, .read(token, range, kind)))
        case .writeLocal(let token, let write):
            nodes[node.rawValue].writesInFlight[token] = write
            queue.push(at: diskTime(node) + ioLatency(), .ioComplete(node, incarnation: incarnation, .write(token, write)))
        case .syncLocal(let token):
            queue.push(at: diskTime(node) + ioLatency() * 2, .ioComplete(node, incarnation: incarnation, .sync(token)))
        case .persist(let token, let write):
            // One metadata write after the other, as the daemon's serial queue runs them.
            let at = max(diskTime(node), nodes[node.rawValue].metadataQueueFreeAt) + ioLatency()
            nodes[node.rawValue].metadataQueueFreeAt = at
            queue.push(at: at, .ioComplete(node, incarnation: incarnation, .persist(token, write)))
        case .send(let connection, let message, let reportSent):
            guard let (index, at) = network.schedule(on: connection, to: node.other, now: now, latency: latency(50_000, 2_000_000)) else { return }
            queue.push(at: at, .netDeliver(connection, to: node.other, index: index, message))
            if let sequence = reportSent {
                queue.push(at: now + 10_000, .engine(node, incarnation: incarnation, .peerSent(connection, sequence: sequence)))
            }
        case .dropConnection(let connection, let reason):
            note("\(node) drops connection \(connection): \(reason)")
            cutConnection(connection, peerNoticesAfter: latency(100_000, 5_000_000))
        case .exportSizeChanged:
            break
        case .probePeer(let connection):
            // The link pings: a peer that cannot answer within ping-timeout (0.5 s; the link is
            // stalled longer) is dropped, as PeerLink does.
            if network.stalledUntil > now + 500_000_000 {
                note("\(node)'s ping is not answered within ping-timeout: connection \(connection) dropped")
                cutConnection(connection, peerNoticesAfter: latency(100_000, 5_000_000))
            }
        case .goStandAlone(let reason):
            note("\(node) goes StandAlone: \(reason)")
            nodes[node.rawValue].standAlone = true
            if let live = network.live { cutConnection(live, peerNoticesAfter: latency(100_000, 5_000_000)) }
        case .resumeConnecting:
            nodes[node.rawValue].standAlone = false
        case .complete(let id, let result):
            clientCompleted(id, result, on: node)
        case .reply(let id, let ok, let message):
            note("\(node) answers: \(ok ? "" : "refused: ")\(message)")
            if id == nodes[node.rawValue].attachCommand { attachAnswered(node, ok: ok) }
            if let request = fenceRequests[node], request.command == id {
                fenceRequests[node] = nil
                fenceAnswered(request, message: message)
            }
        case .runHandler(let token, let name, _) where name == "fence-peer":
            note("\(node) runs handler fence-peer")
            queue.push(at: now + latency(5_000_000, 200_000_000), .fenceRequest(from: node, token: token, incarnation: incarnation, attempt: 0))
        case .runHandler(let token, let name, _):
            note("\(node) runs handler \(name)")
            queue.push(at: now + latency(1_000_000, 50_000_000), .ioComplete(node, incarnation: incarnation, .handler(token)))
        case .log(_, let message):
            note("\(node): \(message)")
        case .roleChanged:
            break
        case .diskDetached(let failure, let farewell):
            note("\(node) detaches its disk\(failure.map { ": \($0.summary)" } ?? "")")
            nodes[node.rawValue].detached = true
            if let failure, failure.keepsDiskOut { nodes[node.rawValue].failedRecord = failure }
            // The farewell goes on the metadata queue after what is there (a stuck disk's earlier
            // writes land first; found by the simulator, seed 2234).
            let at = max(diskTime(node), nodes[node.rawValue].metadataQueueFreeAt) + ioLatency()
            nodes[node.rawValue].metadataQueueFreeAt = at
            queue.push(at: at, .ioComplete(node, incarnation: incarnation, .farewell(farewell, failure: failure)))
        }
    }

    /// The repd fence-peer handler: it asks the other node, over a fencing path that is up whenever
    /// that node is, to outdate itself, and exits with the code the answer carries (5 when the other
    /// node is down; "still connected" is asked again, up to 10 times a second apart).
    func fenceRequest(from: SimNode, token: IOToken, incarnation: Int, attempt: Int) {
        guard nodes[from.rawValue].incarnation == incarnation, nodes[from.rawValue].engine != nil else { return }
        let target = from.other
        guard nodes[target.rawValue].engine != nil else {
            note("\(from)'s fence-peer: \(target) is unreachable")
            queue.push(at: now + latency(1_000_000, 50_000_000), .engine(from, incarnation: incarnation, .handlerFinished(token, .exited(5))))
            return
        }
        let id = nodes[target.rawValue].nextCommand
        nodes[target.rawValue].nextCommand += 1
        fenceRequests[target] = (id, from, token, incarnation, attempt)
        deliver(.command(id, .outdate(byPeer: true)), to: target, incarnation: nodes[target.rawValue].incarnation)
    }

    func fenceAnswered(_ request: (command: CommandID, from: SimNode, token: IOToken, incarnation: Int, attempt: Int), message: String) {
        let code = Int(message.prefix { $0.isNumber }) ?? 1
        if code == FenceAnswer.connected.rawValue && request.attempt < 10 {
            queue.push(at: now + 1_000_000_000, .fenceRequest(from: request.from, token: request.token, incarnation: request.incarnation, attempt: request.attempt + 1))
            return
        }
        let exit = code == FenceAnswer.connected.rawValue || code == FenceAnswer.refused.rawValue ? 1 : code
        queue.push(at: now + latency(1_000_000, 50_000_000),
                   .engine(request.from, incarnation: request.incarnation, .handlerFinished(request.token, .exited(Int32(exit)))))
    }

    /// When the node's disk takes new I/O (later while it is stuck).
    func diskTime(_ node: SimNode) -> UInt64 { max(now, nodes[node.rawValue].stalledUntil) }

    /// `repd attach`, as the daemon does it: only once the old disk's I/O has returned.
    func attach(_ node: SimNode, fresh: Bool) {
        guard let engine = nodes[node.rawValue].engine, !engine.diskAttached else { return }
        guard nodes[node.rawValue].writesInFlight.isEmpty, now >= nodes[node.rawValue].metadataQueueFreeAt else {
            return note("attach on \(node) refused: the old disk still has I/O in flight")
        }
        // An operator replaces a disk only while the peer holds the data (else this disk may be the last copy).
        if fresh, engine.state.servedByPeer {
            // A new disk: empty, with fresh metadata (create-md). What only the old disk held
            // (this node's writes while apart from the peer) goes with it, by the operator's choice.
            if wroteApart[node.rawValue] {
                note("\(node)'s disk is replaced: its changes since t=\(milliseconds(lastInSync)) ms go with the old disk")
                ledger.discarded(node: node, since: lastInSync)
                wroteApart[node.rawValue] = false
            }
            let layout = nodes[node.rawValue].metadata.durableSuperblock.layout
            let superblock = Superblock(layout: layout, resourceName: "r0", nodeName: node.name, deviceUUID: random.next(), createdAt: 0)
            nodes[node.rawValue].disk = SimulatedDisk(blockCount: scenario.blockCount)
            nodes[node.rawValue].metadata = SimulatedMetadata(superblock: superblock, pageCount: DirtyBitmap(blockCount: scenario.blockCount).pageCount)
            nodes[node.rawValue].farewellLost = false
            nodes[node.rawValue].stalledUntil = 0
        }
        let (superblock, bitmap, replay) = nodes[node.rawValue].metadata.load(blockCount: scenario.blockCount)
        let id = nodes[node.rawValue].nextCommand
        nodes[node.rawValue].nextCommand += 1
        nodes[node.rawValue].attachCommand = id
        nodes[node.rawValue].detached = false
        let disk = NewDisk(superblock: superblock, bitmap: bitmap, activityLogReplay: replay,
                           usableSize: UInt64(scenario.blockCount) * Geometry.blockSize, fullSync: nodes[node.rawValue].farewellLost)
        deliver(.attachDisk(id, disk), to: node, incarnation: nodes[node.rawValue].incarnation)
    }

    /// The answer to an attach: the record of the failure goes once the disk is taken.
    func attachAnswered(_ node: SimNode, ok: Bool) {
        nodes[node.rawValue].attachCommand = nil
        if ok {
            nodes[node.rawValue].failedRecord = nil
            nodes[node.rawValue].farewellLost = false
        } else {
            nodes[node.rawValue].detached = true
        }
    }

    func ioLatency() -> UInt64 {
        pick(50) == 0 ? latency(20_000_000, 200_000_000) : latency(20_000, 3_000_000)
    }

    func complete(_ completion: IOCompletion, on node: SimNode, incarnation: Int) {
        guard nodes[node.rawValue].incarnation == incarnation, nodes[node.rawValue].engine != nil else { return }
        let event: Event
        switch completion {
        case .read(let token, let range, let kind):
            let disk = nodes[node.rawValue].disk
            if disk.fails(range) && kind != .prefetch && kind != .allocation {
                event = .readDone(token, .failure(IOFailure(.io, "simulated read error at \(range)")))
            } else {
                event = .readDone(token, .success(readOutcome(disk, range, kind)))
            }
        case .write(let token, let write):
            nodes[node.rawValue].writesInFlight[token] = nil
            if let watched = watchBlock, write.segments.contains(where: { SimulatedDisk.blocks($0).contains(watched) }) {
                var probe = SimulatedDisk(blockCount: scenario.blockCount)
                probe.apply(write)
                note("watch: \(node) writes block \(watched): \(ledger.describe(probe.current(watched)))\(write.fua ? " (FUA)" : "") [\(write.kind) \(write.range.lowerBound / 4096)+\(write.range.count / 4096)]\(nodes[node.rawValue].disk.fails(write.range) ? " (fails)" : "")")
            }
            if nodes[node.rawValue].disk.fails(write.range) {
                event = .writeDone(token, IOFailure(.io, "simulated write error at \(write.range)"))
            } else {
                nodes[node.rawValue].disk.apply(write)
                event = .writeDone(token, nil)
            }
        case .sync(let token):
            nodes[node.rawValue].disk.sync()
            if scenario.internalMetadata { nodes[node.rawValue].metadata.sync() }
            event = .syncDone(token, nil)
        case .persist(let token, let write):
            if nodes[node.rawValue].disk.failing != nil && scenario.internalMetadata && pick(20) == 0 {
                // Internal metadata lives on the failing disk: now and then its writes fail too.
                event = .persisted(token, IOFailure(.io, "simulated metadata write error"))
            } else {
                applyMetadata(write, on: node)
                event = .persisted(token, nil)
            }
        case .handler(let token):
            event = .handlerFinished(token, .exited(0))
        case .farewell(let farewell, let failure):
            // On a failing disk the farewell may fail too.
            if nodes[node.rawValue].disk.failing != nil && scenario.internalMetadata && pick(2) == 0 {
                note("\(node): the farewell metadata write fails")
                if failure?.operation?.contains("read") == true { nodes[node.rawValue].farewellLost = true }
            } else {
                applyMetadata(farewell, on: node)
            }
            return
        }
        deliver(event, to: node, incarnation: incarnation)
    }

    func readOutcome(_ disk: SimulatedDisk, _ range: Range<UInt64>, _ kind: LocalReadKind) -> ReadOutcome {
        let blocks = SimulatedDisk.blocks(range)
        switch kind {
        case .data:
            return ReadOutcome(data: disk.read(range))
        case .dataAndDigests(let algorithm):
            return ReadOutcome(data: disk.read(range), digests: blocks.map { SimulatedDisk.digest(tag: disk.current($0), algorithm: algorithm) })
        case .digests(let algorithm):
            return ReadOutcome(digests: blocks.map { SimulatedDisk.digest(tag: disk.current($0), algorithm: algorithm) })
        case .prefetch:
            return ReadOutcome()
        case .allocation:
            return ReadOutcome(allocation: [AllocationRun(length: UInt64(range.count), hole: false)])
        }
    }

    func applyMetadata(_ write: MetadataWrite, on node: SimNode) {
        if write.syncDataFirst {
            nodes[node.rawValue].disk.sync()
            if scenario.internalMetadata { nodes[node.rawValue].metadata.sync() }
        }
        if nodes[node.rawValue].metadata.apply(write), scenario.internalMetadata { nodes[node.rawValue].disk.sync() }
    }
}
