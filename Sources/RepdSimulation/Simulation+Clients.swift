import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine

/// The simulated applications (a file system's pattern: writes that never overlap its own
/// in-flight writes, reads, flushes) and the operator.
extension Simulation {
    // MARK: schedule steps

    func perform(_ action: StepAction) {
        guard !healing else { return }
        note("step: \(action)")
        switch action {
        case .promote(let node, let force): command(.primary(force: force), on: node)
        case .demote(let node): command(.secondary, on: node)
        case .workload(let node, let seconds):
            // The application runs where the operator makes the resource Primary (which may be refused).
            if nodes[node.rawValue].engine?.state.role == .secondary { command(.primary(force: false), on: node) }
            nodes[node.rawValue].workloadUntil = max(nodes[node.rawValue].workloadUntil, now + UInt64(seconds) * 1_000_000_000)
            scheduleClient(node)
        case .crash(let node, let seconds):
            crash(node, downFor: UInt64(seconds) * 1_000_000_000)
        case .partition(let seconds):
            network.partitionedUntil = now + UInt64(seconds) * 1_000_000_000
            if let live = network.live { cutConnection(live, peerNoticesAfter: latency(500_000_000, 2_500_000_000)) }
            queue.push(at: network.partitionedUntil, .endPartition)
        case .stall(let seconds):
            network.stalledUntil = now + UInt64(seconds) * 1_000_000_000
        case .diskErrors(let node, let first, let count, let seconds):
            nodes[node.rawValue].disk.failing = first..<min(scenario.blockCount, first + count)
            queue.push(at: now + UInt64(seconds) * 1_000_000_000, .endDiskErrors(node))
        case .detach(let node): command(.detach, on: node)
        case .attach(let node, let fresh): attach(node, fresh: fresh)
        case .diskStall(let node, let seconds):
            nodes[node.rawValue].stalledUntil = max(nodes[node.rawValue].stalledUntil, now + UInt64(seconds) * 1_000_000_000)
        case .disconnect(let node): command(.disconnect, on: node)
        case .connect(let node): command(.connect(discardMyData: false, dryRun: false), on: node)
        case .verify(let node): command(.verify, on: node)
        // An operator who invalidates says which copy is wrong: the one on the disk that failed.
        case .invalidate(let node):
            if node == failingDisk { command(.invalidate(full: false), on: node) }
        case .invalidateRemote(let node):
            if node != failingDisk { command(.invalidateRemote(full: false), on: node) }
        case .pauseSync(let node, let seconds):
            command(.pauseSync, on: node)
            queue.push(at: now + UInt64(seconds) * 1_000_000_000, .resumeSync(node))
        case .adjust(let node, let mode, let rate):
            // The node's resource file changed: its next start reads the new settings too.
            nodes[node.rawValue].adjusted = (mode, rate)
            nodes[node.rawValue].adjustedAt = now
            guard nodes[node.rawValue].engine != nil else { return }
            let id = nodes[node.rawValue].nextCommand
            nodes[node.rawValue].nextCommand += 1
            deliver(.adjust(id, configuration(for: node)), to: node, incarnation: nodes[node.rawValue].incarnation)
        }
    }

    func command(_ command: OperatorCommand, on node: SimNode) {
        guard nodes[node.rawValue].engine != nil else { return }
        let id = nodes[node.rawValue].nextCommand
        nodes[node.rawValue].nextCommand += 1
        deliver(.command(id, command), to: node, incarnation: nodes[node.rawValue].incarnation)
    }

    // MARK: applications

    func scheduleClient(_ node: SimNode) {
        guard !nodes[node.rawValue].clientScheduled else { return }
        nodes[node.rawValue].clientScheduled = true
        queue.push(at: now + latency(100_000, 20_000_000), .client(node))
    }

    func clientTurn(_ node: SimNode) {
        nodes[node.rawValue].clientScheduled = false
        guard !healing, now < nodes[node.rawValue].workloadUntil else { return }
        defer { scheduleClient(node) }
        guard let engine = nodes[node.rawValue].engine, engine.state.role == .primary,
              nodes[node.rawValue].requests.count < 6 else { return }
        let id = nodes[node.rawValue].nextRequest
        nodes[node.rawValue].nextRequest += 1
        let incarnation = nodes[node.rawValue].incarnation
        let roll = pick(100)
        if roll < 8 {
            nodes[node.rawValue].requests[id] = .flush(issuedAt: now)
            deliver(.clientFlush(id), to: node, incarnation: incarnation)
            return
        }
        let blocks = 1 + pick(roll < 60 ? 8 : 64)
        let first = pick(scenario.blockCount - blocks)
        let range = UInt64(first) * Geometry.blockSize..<UInt64(first + blocks) * Geometry.blockSize
        if roll < 75 {
            // A read is checked when the node's data is current (UpToDate, or read through the peer).
            let checked = engine.state.disk == .upToDate || engine.state.readsThroughPeer || engine.state.servedByPeer
            nodes[node.rawValue].requests[id] = .read(range: range, issuedAt: now, checked: checked)
            deliver(.clientRead(id, offset: range.lowerBound, length: UInt32(range.count), kind: .read), to: node, incarnation: incarnation)
            return
        }
        var blockRange = first..<(first + blocks)
        var writeRange = range
        let kind: PeerWrite.Kind = roll < 92 ? .data : roll < 96 ? .trim : .zeroes
        if kind != .data && pick(4) == 0 {
            // Sometimes a large one (a file system's discard of a whole region, or of everything).
            let start = pick(2) == 0 ? 0 : pick(scenario.blockCount / 2)
            blockRange = start..<scenario.blockCount
            writeRange = UInt64(start) * Geometry.blockSize..<UInt64(scenario.blockCount) * Geometry.blockSize
        }
        guard nodes[node.rawValue].busyBlocks.isDisjoint(with: blockRange) else { return }
        nodes[node.rawValue].busyBlocks.formUnion(blockRange)
        let tags = ledger.newTags(blockRange.count)
        let fua = pick(10) == 0
        for (offset, tag) in tags.enumerated() {
            ledger.issued(tag: tag, block: blockRange.lowerBound + offset, node: node, at: now, fua: fua, zero: kind != .data)
        }
        let connection = engine.state.connection == .connected ? engine.session?.connection : nil
        nodes[node.rawValue].requests[id] = .write(range: writeRange, tags: tags, issuedAt: now, connection: connection)
        deliver(.clientWrite(id, ClientWrite(range: writeRange, kind: kind, fua: fua, payload: kind == .data ? SimulatedDisk.payload(tags: tags) : nil)),
                to: node, incarnation: incarnation)
    }

    func clientCompleted(_ id: ClientRequestID, _ result: ClientResult, on node: SimNode) {
        guard let request = nodes[node.rawValue].requests.removeValue(forKey: id) else { return }
        let ok: Bool
        if case .failed = result { ok = false } else { ok = true }
        switch request {
        case .flush(let issuedAt):
            if ok { ledger.flushed(node: node, issuedAt: issuedAt) }
        case .write(let range, let tags, let issuedAt, let connection):
            let blocks = SimulatedDisk.blocks(range)
            nodes[node.rawValue].busyBlocks.subtract(blocks)
            let engine = nodes[node.rawValue].engine!
            // The protocol in effect when the write completed decides what its acknowledgement
            // promises (an adjust may have changed it while the write was in flight: a write
            // admitted under C still waits for the peer's write under A, and one under A waits
            // for it once C is in effect).
            let protocolC = engine.configuration.replication == .C
            // Replicated for sure only if connected on the same connection from start to end.
            let replicated = protocolC && connection != nil && engine.state.connection == .connected
                && engine.session?.connection == connection
            for tag in tags {
                ledger.completed(tag: tag, at: now, ok: ok, replicatedAck: replicated, fuaIsDurable: protocolC)
            }
            guard ok else { return }
            if (!protocolC || nodes[node.rawValue].adjustedAt > issuedAt) && engine.state.disk != .upToDate {
                // Protocols A and B acknowledge before the peer has the write: on a SyncTarget, whose
                // disk is not UpToDate, a broken link and the resync after it may take it away.
                ledger.void(tags: tags)
            }
            if engine.state.connection != .connected {
                if !wroteApart[node.rawValue] { note("\(node) wrote while apart (tags \(tags.prefix(3)))") }
                wroteApart[node.rawValue] = true
            }
            if protocolC { checkOnPeer(tags: tags, blocks: blocks, acknowledgedBy: node) }
        case .read(let range, let issuedAt, let checked):
            guard ok, checked, case .data(let buffer) = result else { return }
            let blocks = SimulatedDisk.blocks(range)
            let values = SimulatedDisk.tags(of: buffer, blocks: blocks.count)
            for (offset, block) in blocks.enumerated() {
                let survivors = ledger.mustSurvive(block: block).filter { write in
                    guard let completed = write.completedAt, completed < issuedAt else { return false }
                    // The other node's writes are here since its acknowledgement, unless this node
                    // lost power meanwhile (its copy may not have been durable yet).
                    return write.node == node || (write.replicatedAck && lastCrash[node.rawValue] < write.issuedAt)
                }
                if let problem = ledger.check(value: values[offset], block: block, against: survivors) {
                    violate("read returns acknowledged data", "\(node) read \(problem)")
                    return
                }
            }
        }
    }

    /// Protocol C: a write is acknowledged only once the peer's disk has it, unless the
    /// acknowledging node has its blocks marked out of sync (the resync brings them over).
    func checkOnPeer(tags: [UInt64], blocks: Range<Int>, acknowledgedBy node: SimNode) {
        let peer = nodes[node.other.rawValue]
        guard peer.engine != nil, let bitmap = nodes[node.rawValue].engine?.metadata.bitmap else { return }
        for (offset, block) in blocks.enumerated() {
            // A peer that lost power meanwhile may have lost it; its loss marks the blocks out of sync here.
            guard let write = ledger.record(tags[offset]), lastCrash[node.other.rawValue] < write.issuedAt else { continue }
            let value = peer.disk.current(block)
            if ledger.isOlder(value, than: write) && !bitmap.isOutOfSync(block: block) {
                violate("protocol C: acknowledged means on both disks",
                        "\(node) acknowledged \(ledger.describe(write.tag)) at block \(block), but \(node.other)'s disk has \(ledger.describe(value)) and \(node) has the block in sync")
                return
            }
        }
    }
}
