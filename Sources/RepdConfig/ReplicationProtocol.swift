/// When a write counts as complete (DRBD's `protocol`).
public enum ReplicationProtocol: String, Sendable, Hashable, CaseIterable {
    /// Local disk written and the data handed to the local TCP send buffer.
    case A
    /// Local disk written and the data received by the peer.
    case B
    /// Both disks written. The only protocol that allows two primaries.
    case C
}
