/// The `startup` section: what to wait for when the resource is started.
public struct StartupOptions: Sendable, Hashable {
    /// Host names to promote at start, or `["both"]`.
    public var becomePrimaryOn: [String] = []
    /// Seconds to wait for the peer; 0 waits forever.
    public var wfcTimeoutSeconds = 0
    /// Seconds to wait for the peer when this node was degraded before the restart; 0 waits forever.
    public var degrWfcTimeoutSeconds = 0
    /// Seconds to wait for the peer when this node's data is outdated; 0 waits forever.
    public var outdatedWfcTimeoutSeconds = 0
    /// Keep waiting for the peer after a split brain was detected.
    public var waitAfterSB = false

    public init() {}
}
