/// How fast the SyncSource may send, decided once per tick of 100 ms (DRBD's resync rate control).
///
/// - Fixed rate (`c-plan-ahead 0`): `resync-rate` bytes per second, spread evenly over the ticks.
/// - Dynamic (`c-plan-ahead` > 0): a controller that aims to keep `c-fill-target` bytes in flight
///   (or, with a fill target of 0, `c-delay-target` worth of the current rate), spreading each
///   correction over the planning horizon of `c-plan-ahead` ticks, never above `c-max-rate`.
/// - In both modes, while applications did I/O during the last tick and `c-min-rate` is not 0,
///   resync is held to `c-min-rate` so that it does not starve them.
///
/// Pure: the caller passes what happened during the tick and gets the bytes it may send.
public struct ResyncController: Sendable, Equatable {
    public struct Settings: Sendable, Equatable {
        public var fixedRate: Int
        /// Ticks (tenths of a second) in the planning horizon; 0 selects the fixed rate.
        public var planAhead: Int
        public var fillTarget: Int
        /// Tenths of a second (used when `fillTarget` is 0).
        public var delayTarget: Int
        public var maxRate: Int
        public var minRate: Int

        public init(fixedRate: Int, planAhead: Int, fillTarget: Int, delayTarget: Int, maxRate: Int, minRate: Int) {
            self.fixedRate = fixedRate
            self.planAhead = planAhead
            self.fillTarget = fillTarget
            self.delayTarget = delayTarget
            self.maxRate = maxRate
            self.minRate = minRate
        }
    }

    /// Ticks per second.
    public static let ticksPerSecond = 10

    public var settings: Settings
    private var plan: [Int]
    private var planned = 0

    public init(settings: Settings) {
        self.settings = settings
        self.plan = Array(repeating: 0, count: max(settings.planAhead, 1))
    }

    public var isDynamic: Bool { settings.planAhead > 0 }

    /// The bytes the source may send during the next tick.
    /// - Parameters:
    ///   - acknowledged: resync bytes the target acknowledged during the last tick.
    ///   - inFlight: resync bytes sent and not acknowledged yet.
    ///   - applicationBusy: applications read or wrote during the last tick.
    public mutating func tick(acknowledged: Int, inFlight: Int, applicationBusy: Bool) -> Int {
        var allowed: Int
        if isDynamic {
            let steps = plan.count
            let want = settings.fillTarget > 0 ? settings.fillTarget : acknowledged * settings.delayTarget
            let correction = want - inFlight - planned
            let perStep = correction / steps
            for index in plan.indices { plan[index] += perStep }
            planned += perStep * steps
            let current = plan.removeFirst()
            plan.append(0)
            planned -= current
            allowed = max(0, acknowledged + current)
            allowed = min(allowed, settings.maxRate / Self.ticksPerSecond)
        } else {
            allowed = settings.fixedRate / Self.ticksPerSecond
        }
        if applicationBusy && settings.minRate > 0 {
            allowed = min(allowed, settings.minRate / Self.ticksPerSecond)
        }
        return allowed
    }
}
