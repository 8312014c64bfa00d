/// The role of a node for a resource, as DRBD names it.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    case primary = "Primary"
    case secondary = "Secondary"
    case unknown = "Unknown"
}

/// The state of a node's local disk (DRBD's disk states), in order of increasing trust.
public enum DiskState: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case diskless = "Diskless"
    case attaching = "Attaching"
    case failed = "Failed"
    case negotiating = "Negotiating"
    case inconsistent = "Inconsistent"
    case outdated = "Outdated"
    case unknown = "DUnknown"
    case consistent = "Consistent"
    case upToDate = "UpToDate"

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: DiskState, b: DiskState) -> Bool { a.rank < b.rank }
}

/// The state of the connection to the peer (DRBD 9's connection states).
public enum ConnectionState: String, Sendable, Hashable, Codable, CaseIterable {
    case standAlone = "StandAlone"
    case disconnecting = "Disconnecting"
    case unconnected = "Unconnected"
    case timeout = "Timeout"
    case brokenPipe = "BrokenPipe"
    case networkFailure = "NetworkFailure"
    case protocolError = "ProtocolError"
    case tearDown = "TearDown"
    case connecting = "Connecting"
    case connected = "Connected"
}

/// The replication state towards the peer (DRBD 9's replication states).
public enum ReplicationState: String, Sendable, Hashable, Codable, CaseIterable {
    case off = "Off"
    case established = "Established"
    case startingSyncSource = "StartingSyncS"
    case startingSyncTarget = "StartingSyncT"
    case wfBitmapSource = "WFBitMapS"
    case wfBitmapTarget = "WFBitMapT"
    case wfSyncUUID = "WFSyncUUID"
    case syncSource = "SyncSource"
    case syncTarget = "SyncTarget"
    case verifySource = "VerifyS"
    case verifyTarget = "VerifyT"
    case pausedSyncSource = "PausedSyncS"
    case pausedSyncTarget = "PausedSyncT"
    case ahead = "Ahead"
    case behind = "Behind"
}
