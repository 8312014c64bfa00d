import ArgumentParser
import ControlProtocol
import RepdSystem

// The verbs boot scripts and cluster agents use: one word each, in DRBD 8.4's form (the form of
// `drbdadm role|cstate|dstate`, whose output the resource agents and scripts written for DRBD
// parse), and bounded waits for a connection or a finished resync.

/// The resources a script verb names: `all` is every resource up on this node.
func scriptResources(_ names: [String], common: CommonOptions) throws -> [String] {
    guard names == ["all"] else {
        if names.contains("all") { throw CLIError(.failed, "`all` stands alone: name resources or say all") }
        return names
    }
    let up = resourcesUp(common)
    if up.isEmpty { throw CLIError(.notUp, "no resource is up on node \(common.node) (no daemon in \(common.runDir))") }
    return up
}

/// One resource's status from its daemon (exit 20 when it is not up).
func resourceStatus(_ name: String, common: CommonOptions) throws -> ResourceStatus {
    guard let status = try collectStatuses([name], common: common).first else {
        throw CLIError(.failed, "\(name): the daemon sent no status")
    }
    return status
}

extension ResourceStatus {
    /// `Primary/Secondary`: this node's role, then the peer's (`Unknown` when not connected).
    var roleWords: String {
        "\(role)/\(connections.first.map { $0.connectionState == "Connected" ? $0.peerRole : "Unknown" } ?? "Unknown")"
    }

    /// DRBD 8.4's connection state: `Connected`, a resync or verify state while one runs
    /// (`SyncSource`, `PausedSyncT`, `VerifyS`, ...), `WFConnection` while waiting for the peer,
    /// else the state itself (`StandAlone`, `Disconnecting`, ...).
    var connectionWord: String {
        guard let connection = connections.first else { return "StandAlone" }
        switch connection.connectionState {
        case "Connected":
            let replication = connection.peerDevices.first?.replicationState ?? "Established"
            return replication == "Established" || replication == "Off" ? "Connected" : replication
        case "Connecting": return "WFConnection"
        default: return connection.connectionState
        }
    }

    /// `UpToDate/UpToDate`: this node's disk, then the peer's (`DUnknown` when not connected).
    var diskWords: String {
        let local = devices.first?.diskState ?? "Diskless"
        guard let connection = connections.first, connection.connectionState == "Connected" else { return "\(local)/DUnknown" }
        return "\(local)/\(connection.peerDevices.first?.peerDiskState ?? "DUnknown")"
    }

    var isConnected: Bool { connections.first?.connectionState == "Connected" }

    /// Connected, no resync or verify running, both disks UpToDate.
    var isInSync: Bool { connectionWord == "Connected" && diskWords == "UpToDate/UpToDate" }
}

/// Prints one line per resource, as drbdadm does.
protocol StateWordVerb: AsyncParsableCommand {
    var common: CommonOptions { get }
    var resources: [String] { get }
    static func word(_ status: ResourceStatus) -> String
}

extension StateWordVerb {
    func run() async throws {
        try await Repd.guarded {
            for name in try scriptResources(resources, common: common) {
                print(Self.word(try resourceStatus(name, common: common)))
            }
        }
    }
}

struct RoleVerb: StateWordVerb {
    static let configuration = CommandConfiguration(
        commandName: "role",
        abstract: "Print the roles, as DRBD 8.4 does: this node's, then the peer's (Primary/Secondary; Unknown when not connected).",
        discussion: """
            One line per resource; `all` is every resource up on this node. Exit 20 when a resource is not up.
            Example: [ "$(repd role r0)" = Primary/Secondary ]
            """)
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names, or all.") var resources: [String]
    static func word(_ status: ResourceStatus) -> String { status.roleWords }
}

struct ConnectionStateVerb: StateWordVerb {
    static let configuration = CommandConfiguration(
        commandName: "cstate",
        abstract: "Print the connection state, as DRBD 8.4 does: Connected, SyncSource, SyncTarget, PausedSyncS, VerifyS, WFConnection, StandAlone, ...",
        discussion: """
            One line per resource; `all` is every resource up on this node. Exit 20 when a resource is not up.
            Example: repd cstate all
            """)
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names, or all.") var resources: [String]
    static func word(_ status: ResourceStatus) -> String { status.connectionWord }
}

struct DiskStateVerb: StateWordVerb {
    static let configuration = CommandConfiguration(
        commandName: "dstate",
        abstract: "Print the disk states, as DRBD 8.4 does: this node's, then the peer's (UpToDate/UpToDate; DUnknown when not connected).",
        discussion: """
            One line per resource; `all` is every resource up on this node. Exit 20 when a resource is not up.
            Example: repd dstate r0
            """)
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names, or all.") var resources: [String]
    static func word(_ status: ResourceStatus) -> String { status.diskWords }
}

/// Polls the daemons until every resource meets `condition`, or the timeout passes.
protocol WaitVerb: AsyncParsableCommand {
    var common: CommonOptions { get }
    var resources: [String] { get }
    var timeout: Double { get }
    static var goal: String { get }
    static func reached(_ status: ResourceStatus) -> Bool
}

extension WaitVerb {
    func run() async throws {
        try await Repd.guarded {
            guard timeout >= 0, timeout.isFinite else { throw CLIError(.failed, "--timeout must be 0 (no limit) or a number of seconds") }
            let names = try scriptResources(resources, common: common)
            let deadline = timeout > 0 ? ProcessSupport.monotonicNanoseconds() + UInt64(timeout * 1e9) : nil
            var waiting = names
            while true {
                var states: [String: ResourceStatus] = [:]
                for name in waiting { states[name] = try resourceStatus(name, common: common) }
                waiting.removeAll { states[$0].map(Self.reached) ?? false }
                if waiting.isEmpty { return }
                if let deadline, ProcessSupport.monotonicNanoseconds() >= deadline {
                    let detail = waiting.map { name in
                        let s = states[name]!
                        return "\(name) (\(s.connectionWord), \(s.diskWords))"
                    }.joined(separator: ", ")
                    throw CLIError(.failed, "not \(Self.goal) after \(Self.seconds(timeout)) s: \(detail)")
                }
                try await Task.sleep(nanoseconds: 200_000_000)
            }
        }
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

struct WaitConnect: WaitVerb {
    static let configuration = CommandConfiguration(
        commandName: "wait-connect",
        abstract: "Wait until the resources are Connected to their peer.",
        discussion: """
            Returns 0 once every named resource is Connected; 1 when --timeout passes first (saying which are not, and their states); 20 when a resource is not up.
            Example: repd up r0 && repd wait-connect r0 --timeout 60
            """)
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names, or all.") var resources: [String]
    @Option(help: ArgumentHelp("Give up after this many seconds (0: no limit).", valueName: "SECONDS")) var timeout: Double = 0
    static let goal = "Connected"
    static func reached(_ status: ResourceStatus) -> Bool { status.isConnected }
}

struct WaitSync: WaitVerb {
    static let configuration = CommandConfiguration(
        commandName: "wait-sync",
        abstract: "Wait until the resources are Connected, with no resync running and both disks UpToDate.",
        discussion: """
            Returns 0 once every named resource is in sync with its peer; 1 when --timeout passes first; 20 when a resource is not up.
            Example: repd wait-sync r0 --timeout 600
            """)
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names, or all.") var resources: [String]
    @Option(help: ArgumentHelp("Give up after this many seconds (0: no limit).", valueName: "SECONDS")) var timeout: Double = 0
    static let goal = "in sync (Connected, UpToDate/UpToDate)"
    static func reached(_ status: ResourceStatus) -> Bool { status.isInSync }
}
