import RepdCore

/// The `net` section: how the replication link behaves. Defaults are DRBD 8.4's.
public struct NetOptions: Sendable, Hashable {
    /// When a write completes. `allow-two-primaries` needs `.C`.
    public var `protocol`: ReplicationProtocol = .C
    public var allowTwoPrimaries = false
    public var afterSB0Pri: AfterSB0Pri = .disconnect
    public var afterSB1Pri: AfterSB1Pri = .disconnect
    public var afterSB2Pri: AfterSB2Pri = .disconnect
    public var rrConflict: RRConflict = .disconnect
    /// Apply the after-sb policies also to a split brain no bitmap covers (rule 100: the histories
    /// are related, but neither bitmap records all changes); the resync is then full.
    public var alwaysASBP = false
    /// Peer authentication digest: `sha1` or `sha256`; `nil` when peers are not authenticated.
    public var cramHMACAlg: String? = nil
    /// The peer authentication secret, at most 64 characters.
    public var sharedSecret: String? = nil
    /// Seconds between connection attempts (`connect-int`).
    public var connectIntervalSeconds = 10
    /// Seconds of idle link before a keep-alive ping (`ping-int`).
    public var pingIntervalSeconds = 10
    /// Tenths of a second to wait for a ping reply (`ping-timeout`).
    public var pingTimeoutDeciseconds = 5
    /// Tenths of a second to wait for the peer to answer a request (`timeout`).
    public var timeoutDeciseconds = 60
    /// How many `timeout`s a write may take before the peer is dropped; 0 disables (`ko-count`).
    public var koCount = 7
    /// TCP send buffer in bytes; 0 lets the kernel size it.
    public var sndbufSize = 0
    /// TCP receive buffer in bytes; 0 lets the kernel size it.
    public var rcvbufSize = 0
    /// Receive buffers (pages) for writes in flight from the peer.
    public var maxBuffers = 2048
    /// Writes between write barriers.
    public var maxEpochSize = 2048
    /// Digest for online verify: `crc32c`, `sha1` or `sha256`.
    public var verifyAlg: String? = nil
    /// Digest for checksum-based resync: `crc32c`, `sha1` or `sha256`.
    public var csumsAlg: String? = nil
    /// Digest over every replicated block, to catch corruption on the wire.
    public var dataIntegrityAlg: String? = nil
    /// `tls yes;`: the replication link runs over TLS 1.3, both nodes showing a certificate signed
    /// by `tls-ca` that names them.
    public var tls = false
    /// PEM files: this node's certificate (chain), its private key, and the CA that signs both nodes'.
    public var tlsCertificate: String? = nil
    public var tlsPrivateKey: String? = nil
    public var tlsCA: String? = nil

    public init() {}
}

extension NetOptions {
    /// The after-split-brain policies, as `SplitBrainResolver` takes them.
    public var splitBrainPolicies: SplitBrainPolicies {
        SplitBrainPolicies(
            afterSB0Pri: afterSB0Pri, afterSB1Pri: afterSB1Pri, afterSB2Pri: afterSB2Pri, alwaysASBP: alwaysASBP)
    }
}
