/// One `on HOST { ... }` section after inheritance from the resource body: everything needed to
/// run the resource on that host, or to reach it as the peer.
///
/// Equality and hashing compare the configuration only; `location` records where the section
/// was written and is ignored, so the same host read from another file compares equal.
public struct HostConfig: Sendable, Hashable {
    /// The host names of the section (`on alice bob { }` has two). A node matches the section
    /// when its name is one of them.
    public var names: [String]
    /// The replicated block device, e.g. `/dev/drbd1`, or `none` (``noDevice``) for none.
    public var device: String
    /// The device minor: given with `minor N`, or taken from a `/dev/drbdN` device name.
    public var minor: Int?
    /// The backing block device or file, or `none` for a diskless node.
    public var disk: String
    /// Where the replication link listens (local) or connects to (peer).
    public var address: NetworkAddress
    /// Where the metadata lives. A diskless node (`disk none`) without `meta-disk` gets `.internal`.
    public var metaDisk: MetaDisk
    /// `node-id N`, 0...31, if given.
    public var nodeId: Int?
    /// repd extension: an additional NBD listener (`nbd-address IP:PORT`).
    public var nbdAddress: NetworkAddress?
    /// repd extension: the fencing path (`fence-address IP:PORT`), a second way to reach this node
    /// when the replication link is down: the peer's fence-peer handler (`repd fence-peer-outdate`)
    /// asks it to outdate its disk there.
    public var fenceAddress: NetworkAddress?
    /// repd extension: `nbd-insecure yes;` accepts an `nbd-address` other machines can reach.
    public var nbdInsecure = false
    /// repd extension: `nbd-socket-group NAME;`: the NBD unix socket is mode 0660 with this group
    /// (root only, 0600, without it).
    public var nbdSocketGroup: String?
    /// repd extension: TLS on this node's NBD exports (`nbd-tls require|allow|off;`).
    public var nbdTLS: NBDTLSMode = .off
    /// `nbd-tls-certificate`, `nbd-tls-privkey`, `nbd-tls-ca` as written (nil: not set; the daemon
    /// takes the certificate and key from the net section's tls-certificate and tls-privkey then).
    public var nbdTLSCertificate: String?
    public var nbdTLSPrivateKey: String?
    public var nbdTLSCA: String?
    /// Where the `on` keyword of this section is.
    public var location: SourceLocation

    public init(
        names: [String], device: String, minor: Int? = nil, disk: String, address: NetworkAddress,
        metaDisk: MetaDisk, nodeId: Int? = nil, nbdAddress: NetworkAddress? = nil, fenceAddress: NetworkAddress? = nil,
        location: SourceLocation
    ) {
        self.names = names
        self.device = device
        self.minor = minor
        self.disk = disk
        self.address = address
        self.metaDisk = metaDisk
        self.nodeId = nodeId
        self.nbdAddress = nbdAddress
        self.fenceAddress = fenceAddress
        self.location = location
    }

    /// `device none;`: the resource is only exported over NBD, `repd up` attaches no block device.
    public static let noDevice = "none"

    /// Whether `repd up` gives this node a block device at ``device``.
    public var wantsDevice: Bool { device != Self.noDevice && !device.isEmpty }

    public static func == (lhs: HostConfig, rhs: HostConfig) -> Bool {
        lhs.names == rhs.names && lhs.device == rhs.device && lhs.minor == rhs.minor && lhs.disk == rhs.disk
            && lhs.address == rhs.address && lhs.metaDisk == rhs.metaDisk && lhs.nodeId == rhs.nodeId
            && lhs.nbdAddress == rhs.nbdAddress && lhs.fenceAddress == rhs.fenceAddress
            && lhs.nbdInsecure == rhs.nbdInsecure && lhs.nbdSocketGroup == rhs.nbdSocketGroup
            && lhs.nbdTLS == rhs.nbdTLS && lhs.nbdTLSCertificate == rhs.nbdTLSCertificate
            && lhs.nbdTLSPrivateKey == rhs.nbdTLSPrivateKey && lhs.nbdTLSCA == rhs.nbdTLSCA
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(names)
        hasher.combine(device)
        hasher.combine(minor)
        hasher.combine(disk)
        hasher.combine(address)
        hasher.combine(metaDisk)
        hasher.combine(nodeId)
        hasher.combine(nbdAddress)
        hasher.combine(fenceAddress)
        hasher.combine(nbdInsecure)
        hasher.combine(nbdSocketGroup)
        hasher.combine(nbdTLS)
        hasher.combine(nbdTLSCertificate)
        hasher.combine(nbdTLSPrivateKey)
        hasher.combine(nbdTLSCA)
    }
}

/// `nbd-tls`: whether NBD clients must (require), may (allow) or cannot (off) upgrade to TLS with
/// NBD_OPT_STARTTLS.
public enum NBDTLSMode: String, Sendable, Hashable, CaseIterable {
    case off, allow, require
}
