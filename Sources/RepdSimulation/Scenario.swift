import RepdCore
import RepdEngine

/// The two nodes of every simulation.
public enum SimNode: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case alpha = 0, beta = 1
    public var other: SimNode { self == .alpha ? .beta : .alpha }
    public var name: String { self == .alpha ? "alpha" : "beta" }
    public var description: String { name }
}

/// One thing the schedule makes happen at a point in simulated time.
public enum StepAction: Sendable, Hashable, CustomStringConvertible {
    case promote(SimNode, force: Bool)
    case demote(SimNode)
    /// Application I/O on the node for `seconds` (writes, reads, flushes at random).
    case workload(SimNode, seconds: Int)
    /// The node loses power and comes back after `seconds`.
    case crash(SimNode, downSeconds: Int)
    /// The link is cut for `seconds` (the connection breaks; no new one until it heals).
    case partition(seconds: Int)
    /// Messages take `seconds` longer for a while (the peer looks stuck).
    case stall(seconds: Int)
    /// Reads and writes of some blocks of the node's disk fail for `seconds`.
    case diskErrors(SimNode, firstBlock: Int, blocks: Int, seconds: Int)
    case disconnect(SimNode)
    case connect(SimNode)
    /// The operator detaches the node's disk (`repd detach`).
    case detach(SimNode)
    /// The operator attaches the node's disk again, or a new empty one (`create-md`, `repd attach`).
    case attach(SimNode, fresh: Bool)
    /// The node's disk answers nothing for `seconds` (disk-timeout detaches it, if configured).
    case diskStall(SimNode, seconds: Int)
    case verify(SimNode)
    case invalidate(SimNode)
    case invalidateRemote(SimNode)
    case pauseSync(SimNode, seconds: Int)
    /// `repd adjust` with a changed protocol and resync rate (the resource file changed).
    case adjust(SimNode, ReplicationMode, resyncRate: Int)

    public var description: String {
        switch self {
        case .promote(let n, let force): "primary\(force ? " --force" : "") on \(n)"
        case .demote(let n): "secondary on \(n)"
        case .workload(let n, let s): "application I/O on \(n) for \(s) s"
        case .crash(let n, let s): "power loss of \(n), back after \(s) s"
        case .partition(let s): "link cut for \(s) s"
        case .stall(let s): "link stalled for \(s) s"
        case .diskErrors(let n, let first, let count, let s): "I/O errors on \(n)'s disk, blocks \(first)..<\(first + count), for \(s) s"
        case .detach(let n): "detach on \(n)"
        case .attach(let n, let fresh): "attach on \(n)\(fresh ? " (a new disk)" : "")"
        case .diskStall(let n, let s): "\(n)'s disk stops answering for \(s) s"
        case .disconnect(let n): "disconnect on \(n)"
        case .connect(let n): "connect on \(n)"
        case .verify(let n): "verify on \(n)"
        case .invalidate(let n): "invalidate on \(n)"
        case .invalidateRemote(let n): "invalidate-remote on \(n)"
        case .pauseSync(let n, let s): "pause-sync on \(n) for \(s) s"
        case .adjust(let n, let mode, let rate): "adjust on \(n): protocol \(mode.rawValue), resync-rate \(rate >> 20) MiB/s"
        }
    }
}

public struct ScheduleStep: Sendable, Hashable, CustomStringConvertible {
    /// Milliseconds of simulated time from the start.
    public var atMilliseconds: Int
    public var action: StepAction
    public var description: String {
        let seconds = atMilliseconds / 1000, millis = atMilliseconds % 1000
        return "t=\(seconds).\(String(repeating: "0", count: 3 - String(millis).count))\(millis)s \(action)"
    }
}

/// A schedule: the resource's settings and the steps, all chosen from one seed.
public struct Scenario: Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var replication: ReplicationMode
    public var allowTwoPrimaries: Bool
    public var csums: Bool
    public var internalMetadata: Bool
    public var activityLogExtents: Int
    public var blockCount: Int
    public var policies: SplitBrainPolicies
    /// Resync rate (bytes per second): slow ones leave room for faults in the middle of a resync.
    public var resyncRate = 400 << 20
    /// How often the lazy bitmap writer runs (milliseconds).
    public var bitmapFlushMilliseconds = 2000
    /// `disk-timeout` in milliseconds (0: none).
    public var diskTimeoutMilliseconds = 0
    /// The engine's own durability barriers: at most this long apart (milliseconds).
    public var barrierMilliseconds = 1000
    /// `fencing`, with a `fence-peer` handler that asks the other node to outdate itself.
    public var fencing: FencingPolicy = .dontCare
    /// `ko-count` (1: a write late by one `timeout` drops the link, as before ko-count existed).
    public var koCount = 1
    /// `timeout` in milliseconds.
    public var ackTimeoutMilliseconds = 6000
    /// `c-fill-target` in bytes: the dynamic controller (DRBD's default mode) with the resync
    /// rate as `c-max-rate`; 0: the fixed rate (`c-plan-ahead 0`).
    public var resyncFillTarget = 0
    /// Idle activity-log extents leave the table after this many milliseconds (0: never).
    public var activityLogRetireMilliseconds = 10_000
    public var steps: [ScheduleStep]

    public var description: String {
        var lines = ["seed \(seed): protocol \(replication.rawValue), \(blockCount) blocks of 4 KiB, al-extents \(activityLogExtents)"
            + (allowTwoPrimaries ? ", allow-two-primaries" : "") + (csums ? ", csums-alg crc32c" : "")
            + (internalMetadata ? ", internal metadata" : ", external metadata")
            + ", after-sb \(policies.afterSB0Pri)/\(policies.afterSB1Pri.rawValue)/\(policies.afterSB2Pri.rawValue)"
            + ", resync \(resyncRate >> 20) MiB/s" + (resyncFillTarget > 0 ? " (c-max-rate, c-fill-target \(resyncFillTarget >> 10) KiB)" : "")
            + ", bitmap written every \(bitmapFlushMilliseconds) ms"
            + (activityLogRetireMilliseconds > 0 ? ", idle AL extents retired after \(activityLogRetireMilliseconds) ms" : ", idle AL extents kept")
            + (diskTimeoutMilliseconds > 0 ? ", disk-timeout \(diskTimeoutMilliseconds) ms" : "")
            + ", barriers every \(barrierMilliseconds) ms"
            + (fencing != .dontCare ? ", fencing \(fencing.rawValue)" : "") + ", timeout \(ackTimeoutMilliseconds) ms, ko-count \(koCount)"]
        lines += steps.map { "  \($0)" }
        return lines.joined(separator: "\n")
    }

    /// A schedule of mixed faults from a seed: a first Primary, application I/O, and at random
    /// times crashes, link cuts, stalls, disk errors, role changes and operator commands.

    public static func generate(seed: UInt64, seconds: Int = 30) -> Scenario {
        var random = SplitMix64(seed: seed &* 0x9E37_79B9 &+ 1)
        func pick(_ n: Int) -> Int { Int(random.next() % UInt64(n)) }
        func chance(_ percent: Int) -> Bool { pick(100) < percent }
        let protocols: [ReplicationMode] = [.C, .C, .C, .C, .B, .A]
        let replication = protocols[pick(protocols.count)]
        // As in DRBD (and repd's config validator), two Primaries need protocol C.
        let twoPrimaries = replication == .C && chance(35)
        let blockCount = [4096, 8192, 16384][pick(3)]
        var policies = SplitBrainPolicies()
        if chance(50) {
            policies = SplitBrainPolicies(afterSB0Pri: [.discardZeroChanges, .discardLeastChanges, .discardYoungerPrimary][pick(3)],
                                          afterSB1Pri: [.discardSecondary, .consensus, .disconnect][pick(3)],
                                          afterSB2Pri: .disconnect, alwaysASBP: false)
        }
        var steps: [ScheduleStep] = []
        // One node's disk fails in a schedule (on-io-error detach): the operator knows which.
        let failingDisk: SimNode = chance(50) ? .alpha : .beta
        var t = 300 + pick(400)
        steps.append(ScheduleStep(atMilliseconds: t, action: .promote(.alpha, force: true)))
        let end = seconds * 1000
        while t < end {
            t += 200 + pick(2500)
            let node: SimNode = chance(70) ? .alpha : .beta
            let action: StepAction
            switch pick(100) {
            case 0..<30: action = .workload(chance(80) ? .alpha : .beta, seconds: 1 + pick(5))
            case 30..<40: action = .crash(node, downSeconds: 1 + pick(5))
            case 40..<52: action = .partition(seconds: 1 + pick(8))
            case 52..<56: action = .stall(seconds: 1 + pick(3))
            case 56..<59:
                action = .diskErrors(failingDisk, firstBlock: pick(blockCount - 64), blocks: 1 + pick(64), seconds: 1 + pick(4))
            case 59: action = .detach(node)
            case 60: action = .attach(node, fresh: chance(30))
            case 61: action = .diskStall(failingDisk, seconds: 1 + pick(4))
            case 62..<70: action = .promote(node, force: false)
            case 70..<76: action = .demote(node)
            case 76..<80: action = .disconnect(node)
            case 80..<86: action = .connect(node)
            case 86..<90: action = .verify(node)
            case 90..<93: action = .invalidate(node)
            case 93..<96: action = .invalidateRemote(node)
            default: action = .pauseSync(node, seconds: 1 + pick(3))
            }
            steps.append(ScheduleStep(atMilliseconds: t, action: action))
        }
        var scenario = Scenario(seed: seed, replication: replication, allowTwoPrimaries: twoPrimaries, csums: chance(25),
                                internalMetadata: chance(50), activityLogExtents: [4, 8, 64][pick(3)], blockCount: blockCount,
                                policies: policies, steps: steps)
        scenario.resyncRate = [400 << 20, 400 << 20, 24 << 20, 6 << 20][pick(4)]
        scenario.bitmapFlushMilliseconds = [2000, 300][pick(2)]
        scenario.diskTimeoutMilliseconds = [0, 0, 1500][pick(3)]
        // Fencing, with the repd outdate handler over a fencing path that stays up while the
        // replication link is cut (two Primaries need resource-and-stonith, as DRBD's guide says).
        scenario.fencing = twoPrimaries ? [.resourceAndStonith, .resourceAndStonith, .dontCare][pick(3)]
            : [.dontCare, .dontCare, .resourceOnly, .resourceAndStonith][pick(4)]
        // Drawn last: the schedules of earlier seeds keep their steps and settings.
        scenario.barrierMilliseconds = [100, 1000, 1000, 5000][pick(4)]
        // `repd adjust` of the protocol and the resync rate while writes and resyncs run (two
        // Primaries keep protocol C). Drawn after everything else, for the same reason.
        if chance(40) {
            for _ in 0..<(1 + pick(4)) {
                let mode: ReplicationMode = twoPrimaries ? .C : [.A, .B, .C][pick(3)]
                steps.append(ScheduleStep(atMilliseconds: 300 + pick(max(1, end - 300)),
                                          action: .adjust(chance(50) ? .alpha : .beta, mode, resyncRate: [400 << 20, 24 << 20, 6 << 20][pick(3)])))
            }
            scenario.steps = steps
        }
        scenario.koCount = [1, 7, 0][pick(3)]
        // A short `timeout` makes the link stalls and stuck disks of the schedule late writes.
        scenario.ackTimeoutMilliseconds = [6000, 1000][pick(2)]
        // The dynamic controller with a fill target, as with DRBD's defaults (drawn last too).
        scenario.resyncFillTarget = [0, 0, 50 << 10, 1 << 20][pick(4)]
        // Idle extents retired from the activity log: never, quickly, or after the default 10 s.
        scenario.activityLogRetireMilliseconds = [0, 500, 2000, 10_000][pick(4)]
        return scenario
    }
}
