/// The `disk` section: the backing device and resync behaviour, in bytes and DRBD's time units.
/// Defaults are DRBD 8.4's.
public struct DiskOptions: Sendable, Hashable {
    /// Fixed resync rate (`resync-rate`, written in KiB/s by default); used when `c-plan-ahead` is 0.
    public var resyncRateBytesPerSecond = 250 * 1024
    /// Activity log size in 4 MiB extents.
    public var alExtents = 1237
    /// Resync controller planning horizon in tenths of a second; 0 disables the controller.
    public var cPlanAheadDeciseconds = 20
    /// Data the resync controller keeps in flight (`c-fill-target`, written in sectors by default).
    public var cFillTargetBytes = 100 * 512
    /// Latency the resync controller aims for, in tenths of a second (used when fill target is 0).
    public var cDelayTargetDeciseconds = 10
    /// Upper bound for the dynamic resync rate.
    public var cMaxRateBytesPerSecond = 100 * 1024 * 1024
    /// Resync rate kept even while application I/O is active.
    public var cMinRateBytesPerSecond = 250 * 1024
    /// Use only this much of the backing device; `nil` (or `size 0`) uses all of it.
    public var sizeBytes: UInt64? = nil
    /// `pass_on`, `call-local-io-error` or `detach` (DRBD's default and recommendation: a failing
    /// disk is dropped and the node serves through its peer).
    public var onIOError = "detach"
    /// `disk-timeout`: a backing-disk request older than this fails the disk (0: never).
    public var diskTimeoutDeciseconds = 0
    /// `on-no-data-accessible` (in `options`): `io-error`, or `suspend-io` to hold requests that no
    /// disk can serve until data is reachable again or `repd resume-io`.
    public var onNoDataAccessible = "io-error"
    /// `dont-care`, `resource-only` or `resource-and-stonith`.
    public var fencing = "dont-care"

    public init() {}
}
