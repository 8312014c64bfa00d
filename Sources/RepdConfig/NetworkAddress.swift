/// The address family of a ``NetworkAddress``, spelled as in DRBD (`address ipv6 [::1]:7789`).
public enum AddressFamily: String, Sendable, Hashable, CaseIterable {
    case ipv4
    case ipv6
}

/// A numeric IP address and TCP port, as written after `address` or `nbd-address`.
///
/// DRBD only accepts numeric addresses (no host names), and so does repd: the configuration must
/// mean the same thing whatever the resolver says.
public struct NetworkAddress: Sendable, Hashable, CustomStringConvertible {
    /// Also reachable as `NetworkAddress.AddressFamily`.
    public typealias AddressFamily = RepdConfig.AddressFamily

    public var family: AddressFamily
    /// The address without brackets, e.g. `192.168.0.18` or `fd00::1`.
    public var host: String
    /// TCP port, 1...65535.
    public var port: Int

    public init(family: AddressFamily, host: String, port: Int) {
        self.family = family
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:7789` or `[::1]:7789`.
    public var description: String {
        switch family {
        case .ipv4: "\(host):\(port)"
        case .ipv6: "[\(host)]:\(port)"
        }
    }

    /// 127.0.0.0/8 or ::1 (also ::ffff:127.x): reachable from this machine only.
    public var isLoopback: Bool {
        switch family {
        case .ipv4: return host.hasPrefix("127.")
        case .ipv6: return host == "::1" || host.lowercased().hasPrefix("::ffff:127.")
        }
    }

    /// The DRBD configuration form, with the family spelled out: `ipv4 127.0.0.1:7789`.
    var drbdSyntax: String { "\(family.rawValue) \(description)" }
}
