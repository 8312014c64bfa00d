/// How fast the SyncSource may send, decided once per tick of 100 ms (DRBD's resync rate control).
///
/// - Fixed rate (`c-plan-ahead 0`): `resync-rate` bytes per second, spread evenly over the ticks.
/// - Dynamic with a fill target (`c-plan-ahead` > 0, `c-fill-target` > 0, DRBD's default): keep
///   `c-fill-target` bytes in flight. The source sends again whenever acknowledgements make room
///   (``window``), not only at ticks, so an idle link runs at fill target / round trip, up to
///   `c-max-rate` (each tick allows a tenth of it), and a congested one slows down as its round
///   trip grows. Planning the bytes once per tick from what was acknowledged during the last one
///   (DRBD's controller, and repd's before) paced a fast link by the ticks: 15 MiB/s with the
///   defaults on a machine where the link and disks do ten times that.
/// - Dynamic with a delay target (`c-fill-target 0`): keep `c-delay-target` worth of the current
///   rate in flight, spreading each correction over the planning horizon of `c-plan-ahead`
///   ticks, never above `c-max-rate`.
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

    /// The bytes that may be in flight at any moment (fill-target mode), or nil for no such
    /// limit: `c-fill-target`, but at least what `c-max-rate` moves in ``minimumRoundTrip``.
    /// Resync data in flight here is not only in the socket: it is read, sent, written by the
    /// peer and acknowledged, a millisecond or more even between two processes on one machine,
    /// where DRBD's default of 50 KiB would hold the resync to some 35 MiB/s.
    public var window: Int? {
        guard isDynamic, settings.fillTarget > 0 else { return nil }
        return min(max(settings.fillTarget, settings.maxRate / Self.minimumRoundTripDivisor, Self.minimumWindow), Self.maximumWindow)
    }
    /// What the source keeps in flight at most in any mode.
    public static let maximumWindow = 16 << 20
    /// 10 ms: the round trip an idle link may have and still reach `c-max-rate`.
    public static let minimumRoundTripDivisor = 100
    public static let minimumWindow = 4096

    /// The bytes the source may send during the next tick.
    /// - Parameters:
    ///   - acknowledged: resync bytes the target acknowledged during the last tick.
    ///   - inFlight: resync bytes sent and not acknowledged yet.
    ///   - applicationBusy: applications read or wrote during the last tick.
    public mutating func tick(acknowledged: Int, inFlight: Int, applicationBusy: Bool) -> Int {
        var allowed: Int
        if window != nil {
            // The window keeps the fill target; each tick only caps the rate.
            allowed = settings.maxRate / Self.ticksPerSecond
        } else if isDynamic {
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
