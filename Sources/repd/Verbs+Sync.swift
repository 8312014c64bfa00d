import ArgumentParser
import ControlProtocol

/// Sends a request and prints the daemon's answer; a refusal is exit 1 with the reason.
func simpleControl(_ request: ControlRequest, common: CommonOptions, resource: String) throws {
    let reply = try sendControl(request, common: common, resource: resource)
    guard reply.ok else { throw CLIError(.failed, reply.message ?? "\(resource): refused") }
    if let message = reply.message { print(message) }
}

struct PauseSync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause-sync",
        abstract: "Pause the resync of a resource (both nodes show PausedSyncS/PausedSyncT).",
        discussion: """
            The pause holds until `repd resume-sync` on the same node; a resync that starts while paused waits. Application I/O and replication go on.
            Example: repd pause-sync r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.pauseSync), common: common, resource: resource) }
    }
}

struct ResumeSync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume-sync",
        abstract: "Resume a resync paused with pause-sync on this node.",
        discussion: "Example: repd resume-sync r0"
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.resumeSync), common: common, resource: resource) }
    }
}

/// `--reset-bitmap=yes|no`, as drbdsetup spells it.
enum YesNo: String, ExpressibleByArgument, CaseIterable {
    case yes, no
}

struct Invalidate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Discard this node's data: it becomes SyncTarget and receives the peer's data.",
        discussion: """
            Needs a connected peer with an UpToDate disk, and this node Secondary. By default the whole disk is resynced; --reset-bitmap=no resyncs only the blocks already marked out of sync (for example by `repd verify`), on either node. With csums-alg set, blocks whose checksums match are not sent.
            Example: repd invalidate --reset-bitmap=no r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Option(name: .customLong("reset-bitmap"), help: "yes: resync the whole disk; no: only blocks marked out of sync.")
    var resetBitmap: YesNo = .yes

    func run() async throws {
        try await Repd.guarded {
            try simpleControl(ControlRequest(.invalidate, option: resetBitmap == .yes), common: common, resource: resource)
        }
    }
}

struct InvalidateRemote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invalidate-remote",
        abstract: "Discard the peer's data: this node becomes SyncSource and overwrites the peer's copy.",
        discussion: """
            Needs this node UpToDate and the peer Secondary. --reset-bitmap=no resyncs only the blocks already marked out of sync (for example by `repd verify`).
            Example: repd invalidate-remote --reset-bitmap=no r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Option(name: .customLong("reset-bitmap"), help: "yes: resync the whole disk; no: only blocks marked out of sync.")
    var resetBitmap: YesNo = .yes

    func run() async throws {
        try await Repd.guarded {
            try simpleControl(ControlRequest(.invalidateRemote, option: resetBitmap == .yes), common: common, resource: resource)
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare both replicas block by block while online (verify-alg; crc32c if unset).",
        discussion: """
            Starts the verify and returns; `repd status` shows VerifyS/VerifyT and the log lists every range found out of sync. Differences are marked out of sync; repair them with `repd invalidate-remote --reset-bitmap=no RES` on the node whose data is right.
            Example: repd verify r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.verify), common: common, resource: resource) }
    }
}

struct NewCurrentUUID: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-current-uuid",
        abstract: "Start a new data generation; with --clear-bitmap, skip the initial full sync.",
        discussion: """
            --clear-bitmap is for freshly created metadata on both nodes whose disks are known to be identical (for example both empty, or both zeroed): run it on one node while connected, and both become UpToDate without a sync.
            Example: repd new-current-uuid --clear-bitmap r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Clear the bitmap and make both disks UpToDate (fresh metadata only).") var clearBitmap = false

    func run() async throws {
        try await Repd.guarded {
            try simpleControl(ControlRequest(.newCurrentUUID, option: clearBitmap), common: common, resource: resource)
        }
    }
}

struct Connect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect a StandAlone resource to its peer again (after a split brain or `disconnect`).",
        discussion: """
            --discard-my-data: if the connection finds a split brain, this node's changes are dropped and it becomes SyncTarget for the blocks changed on either side (it must be Secondary). --dry-run prints what connecting would decide, from the peer's state as last seen, and changes nothing.
            Example (split brain, beta's changes to be dropped):
              on beta:  repd secondary r0 && repd connect --discard-my-data r0
              on alpha: repd connect r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Drop this node's changes if the connection finds a split brain.") var discardMyData = false
    @Flag(help: "Only print what connecting would decide.") var dryRun = false

    func run() async throws {
        try await Repd.guarded {
            try simpleControl(ControlRequest(.connect, option: discardMyData, dryRun: dryRun), common: common, resource: resource)
        }
    }
}

struct Disconnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop the connection to the peer and stay StandAlone until `repd connect`.",
        discussion: "Writes on a Primary go on and are tracked in the bitmap. Example: repd disconnect r0"
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.disconnect), common: common, resource: resource) }
    }
}

struct Adjust: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a changed resource file to the running resource, without downtime.",
        discussion: """
            Reads the resource file again and compares it with what runs. Net options (protocol, timeout, after-sb-*, rr-conflict, csums-alg, verify-alg, allow-two-primaries), disk options (resync-rate, c-*, on-io-error, fencing, disk-timeout, on-no-data-accessible) and handlers apply at once, a running resync included; shared-secret, cram-hmac-alg, ping-int, ping-timeout and buffer sizes from the next connection on; startup options, connect-int and al-extents at the next `up`. A changed disk, meta-disk, device, address, node id or size cannot change on a running resource: then nothing is applied and the reason says what to do. --dry-run prints the changes and applies nothing. Run it on both nodes. A resource that is not up gives exit 20 (use `repd up`).
            Examples: repd adjust r0 --dry-run
                      repd adjust all
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names, or all.") var resources: [String]
    @Flag(help: "Only print what would change.") var dryRun = false

    func run() async throws {
        try await Repd.guarded {
            for name in try scriptResources(resources, common: common) {
                _ = try common.resolve(name)  // a broken file fails here, with file:line, before the daemon is asked
                try simpleControl(ControlRequest(.adjust, dryRun: dryRun, configDirectory: common.configDir), common: common, resource: name)
            }
        }
    }
}

struct Resize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take a grown backing disk into use, online (after the file or LV grew on both nodes).",
        discussion: """
            Run it on both nodes once both backing disks have grown. Each node's bitmap grows and its new area is marked out of sync; once both have grown (and are connected) the replicated size becomes the smaller of the two disks, new NBD connections see it, and the new area is resynced from the Primary. --assume-clean skips that resync: say it only when the new areas are identical on both nodes (e.g. both zeroes). Needs external metadata (meta-disk FILE or DEVICE); shrinking is refused.
            Example (both nodes): lvextend -L +1G vg/r0-backing && repd resize r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "The new area is identical on both nodes: do not resync it.") var assumeClean = false

    func run() async throws {
        try await Repd.guarded {
            try simpleControl(ControlRequest(.resize, option: assumeClean), common: common, resource: resource)
        }
    }
}
