import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine

/// A broken invariant: what, when, and the evidence.
public struct Violation: Sendable, CustomStringConvertible {
    public var atMilliseconds: UInt64
    public var invariant: String
    public var detail: String
    public var description: String { "t=\(atMilliseconds) ms: \(invariant): \(detail)" }
}

public struct SimulationResult: Sendable {
    public var violations: [Violation]
    /// Events processed.
    public var steps: Int
    public var simulatedMilliseconds: UInt64
    /// The last lines the engines logged and the simulator noted, for a failure report.
    public var trace: [String]
    public var writesAcknowledged: Int
    public var crashes: Int
}

/// Runs two engines against simulated disks, a simulated link and simulated applications,
/// through one scenario. Everything (latencies, which unsynced blocks a crash keeps, which
/// messages a cut loses) comes from the seed: the same seed gives the same run.
public final class Simulation {
    let scenario: Scenario
    var random: SplitMix64
    var now: UInt64 = 0
    var queue = EventQueue()
    var nodes: [NodeRuntime]
    var network = SimulatedNetwork()
    var ledger: Ledger
    var violations: [Violation] = []
    var trace: [String] = []
    var steps = 0
    let endOfSchedule: UInt64
    var healing = false
    var finished = false
    /// Application writes completed while the node was not connected (for the split-brain check).
    var wroteApart = [false, false]
    /// The last moment both nodes were connected and in sync.
    var lastInSync: UInt64 = 0
    /// Decisions checked, by connection and number on it.
    var checkedDecisions = Set<Int>()
    /// The node whose disk has I/O errors in this schedule, if any.
    var failingDisk: SimNode {
        for step in scenario.steps {
            if case .diskErrors(let node, _, _, _) = step.action { return node }
            if case .diskStall(let node, _) = step.action { return node }
        }
        return .beta
    }
    var nextLivenessCheck: UInt64 = 0
    /// When each node last lost power (0: never).
    var lastCrash: [UInt64] = [0, 0]
    var discardedOn = Set<Int>()
    /// The outdate request a node's fence-peer handler has out at the other node, by that node.
    var fenceRequests: [SimNode: (command: CommandID, from: SimNode, token: IOToken, incarnation: Int, attempt: Int)] = [:]
    let maximumEvents = 3_000_000
    /// A block whose every change the trace records (`repd-sim --watch BLOCK`).
    public var watchBlock: Int?
    /// How many trace lines to keep (the last ones).
    public var traceLimit = 500

    public init(scenario: Scenario, environmentSeed: UInt64? = nil) {
        self.scenario = scenario
        self.random = SplitMix64(seed: environmentSeed ?? (scenario.seed ^ 0xD1CE_D1CE))
        self.ledger = Ledger(blockCount: scenario.blockCount)
        self.endOfSchedule = UInt64((scenario.steps.map(\.atMilliseconds).max() ?? 0) + 5_000) * 1_000_000
        let layout = try! MetadataLayout.external(backingSize: UInt64(scenario.blockCount) * Geometry.blockSize, metaDeviceSize: nil, index: nil)
        nodes = SimNode.allCases.map { node in
            let superblock = Superblock(layout: layout, resourceName: "r0", nodeName: node.name, deviceUUID: UInt64(node.rawValue + 1), createdAt: 0)
            return NodeRuntime(node: node, blockCount: scenario.blockCount, superblock: superblock,
                               pageCount: DirtyBitmap(blockCount: scenario.blockCount).pageCount)
        }
    }

    public func run() -> SimulationResult {
        for node in SimNode.allCases { boot(node) }
        for (index, step) in scenario.steps.enumerated() {
            queue.push(at: UInt64(step.atMilliseconds) * 1_000_000, .step(index))
        }
        queue.push(at: 100_000_000, .linkCheck)
        queue.push(at: endOfSchedule, .beginHealing)
        while !finished, violations.isEmpty, steps < maximumEvents, let (time, event) = queue.pop() {
            now = time
            steps += 1
            process(event)
            checkAfterStep()
        }
        if !finished && violations.isEmpty {
            violate("liveness", steps >= maximumEvents ? "more than \(maximumEvents) events" : "the run stopped before converging")
        }
        return SimulationResult(violations: violations, steps: steps, simulatedMilliseconds: milliseconds(now), trace: trace,
                                writesAcknowledged: ledger.acknowledgedCount, crashes: ledger.crashes.count)
    }

    // MARK: helpers

    func note(_ line: String) {
        trace.append("t=\(milliseconds(now)) \(line)")
        if trace.count > traceLimit + traceLimit / 5 { trace.removeFirst(trace.count - traceLimit) }
    }

    func violate(_ invariant: String, _ detail: String) {
        violations.append(Violation(atMilliseconds: milliseconds(now), invariant: invariant, detail: detail))
    }

    func pick(_ n: Int) -> Int { n <= 1 ? 0 : Int(random.next() % UInt64(n)) }
    func latency(_ low: UInt64, _ high: UInt64) -> UInt64 { low + random.next() % max(1, high - low) }

    func configuration(for node: SimNode) -> EngineConfiguration {
        var c = EngineConfiguration(resource: "r0", node: node.name, peerNode: node.other.name,
                                    usableSize: UInt64(scenario.blockCount) * Geometry.blockSize)
        c.replication = scenario.replication
        c.allowTwoPrimaries = scenario.allowTwoPrimaries
        c.csumsAlgorithm = scenario.csums ? "crc32c" : nil
        c.verifyAlgorithm = "crc32c"
        c.activityLogExtents = scenario.activityLogExtents
        c.splitBrainPolicies = scenario.policies
        c.resync = ResyncController.Settings(fixedRate: scenario.resyncRate, planAhead: scenario.resyncFillTarget > 0 ? 20 : 0,
                                             fillTarget: scenario.resyncFillTarget, delayTarget: 10,
                                             maxRate: scenario.resyncRate, minRate: 1 << 20)
        if let (replication, rate) = nodes[node.rawValue].adjusted {
            c.replication = replication
            c.resync.fixedRate = rate
            c.resync.maxRate = rate
        }
        c.bitmapFlushInterval = UInt64(scenario.bitmapFlushMilliseconds) * 1_000_000
        c.activityLogRetireAfter = UInt64(scenario.activityLogRetireMilliseconds) * 1_000_000
        c.barrierBytes = 1 << 20
        c.barrierInterval = UInt64(scenario.barrierMilliseconds) * 1_000_000
        c.onIOError = .detach
        c.koCount = scenario.koCount
        c.ackTimeoutNanoseconds = UInt64(scenario.ackTimeoutMilliseconds) * 1_000_000
        c.diskTimeoutNanoseconds = UInt64(scenario.diskTimeoutMilliseconds) * 1_000_000
        c.fencing = scenario.fencing
        if scenario.fencing != .dontCare { c.handlers = ["fence-peer"] }
        return c
    }

    // MARK: events

    func process(_ event: SimEvent) {
        switch event {
        case .engine(let node, let incarnation, let engineEvent):
            deliver(engineEvent, to: node, incarnation: incarnation)
        case .ioComplete(let node, let incarnation, let completion):
            complete(completion, on: node, incarnation: incarnation)
        case .tick(let node, let incarnation):
            guard nodes[node.rawValue].incarnation == incarnation, nodes[node.rawValue].engine != nil else { return }
            deliver(.tick(now: now, unixTime: 1_800_000_000 + now / 1_000_000_000), to: node, incarnation: incarnation)
            queue.push(at: now + 100_000_000, .tick(node, incarnation: incarnation))
        case .step(let index):
            perform(scenario.steps[index].action)
        case .client(let node):
            clientTurn(node)
        case .restart(let node):
            if nodes[node.rawValue].engine == nil { boot(node) }
        case .endPartition:
            note("link heals")
        case .endDiskErrors(let node):
            nodes[node.rawValue].disk.failing = nil
            note("\(node)'s disk works again")
        case .resumeSync(let node):
            command(.resumeSync, on: node)
        case .linkCheck:
            linkCheck()
            queue.push(at: now + 200_000_000, .linkCheck)
        case .netDeliver(let connection, let receiver, let index, let message):
            guard network.delivers(connection, to: receiver, index: index) else { return }
            let runtime = nodes[receiver.rawValue]
            guard runtime.engine != nil, network.believed[receiver.rawValue] == connection else { return }
            deliver(.peerMessage(connection, message), to: receiver, incarnation: runtime.incarnation)
        case .peerLost(let connection, let node, let incarnation):
            guard network.believed[node.rawValue] == connection else { return }
            network.believed[node.rawValue] = nil
            deliver(.peerLost(connection, reason: "simulated connection loss"), to: node, incarnation: incarnation)
        case .beginHealing:
            beginHealing()
        case .heal:
            healStep()
        case .fenceRequest(let from, let token, let incarnation, let attempt):
            fenceRequest(from: from, token: token, incarnation: incarnation, attempt: attempt)
        }
    }

    /// Hands an event to a node's engine and carries out the actions.
    func deliver(_ event: Event, to node: SimNode, incarnation: Int) {
        guard nodes[node.rawValue].incarnation == incarnation, nodes[node.rawValue].engine != nil else { return }
        let actions = nodes[node.rawValue].engine!.handle(event)
        for action in actions { carryOut(action, from: node) }
    }
}

/// What the simulator schedules.
enum SimEvent {
    case engine(SimNode, incarnation: Int, Event)
    case ioComplete(SimNode, incarnation: Int, IOCompletion)
    case tick(SimNode, incarnation: Int)
    case step(Int)
    case client(SimNode)
    case restart(SimNode)
    case endPartition
    case endDiskErrors(SimNode)
    case resumeSync(SimNode)
    case linkCheck
    case netDeliver(ConnectionID, to: SimNode, index: Int, PeerMessage)
    case peerLost(ConnectionID, SimNode, incarnation: Int)
    case beginHealing
    case heal
    /// A node's fence-peer handler reaches the other node over the fencing path.
    case fenceRequest(from: SimNode, token: IOToken, incarnation: Int, attempt: Int)
}

enum IOCompletion {
    case read(IOToken, Range<UInt64>, LocalReadKind)
    case write(IOToken, LocalWrite)
    case sync(IOToken)
    case persist(IOToken, MetadataWrite)
    case handler(IOToken)
    /// The metadata a detached disk is left with, written after what was queued before it.
    case farewell(MetadataWrite, failure: DiskFailure?)
}

/// A min-heap of events by time; equal times keep the order they were pushed in.
struct EventQueue {
    private var heap: [(time: UInt64, order: UInt64, event: SimEvent)] = []
    private var order: UInt64 = 0

    mutating func push(at time: UInt64, _ event: SimEvent) {
        order += 1
        heap.append((time, order, event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (UInt64, SimEvent)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count, less(left, smallest) { smallest = left }
            if right < heap.count, less(right, smallest) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (top.time, top.event)
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        heap[a].time != heap[b].time ? heap[a].time < heap[b].time : heap[a].order < heap[b].order
    }
}
