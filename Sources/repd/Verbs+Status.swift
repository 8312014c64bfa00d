import ArgumentParser
import ControlProtocol
import Foundation
import RepdCore
import RepdDaemon
import RepdStorage
import RepdSystem

/// The resources with a live daemon in the run directory, by name.
func resourcesUp(_ common: CommonOptions) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: common.runDir)) ?? []
    return names.filter { $0.hasSuffix(".pid") }.map { String($0.dropLast(4)) }.sorted()
        .filter { PIDFile.runningPID(RunDirectory(path: common.runDir, resource: $0).pidFile) != nil }
}

/// Statuses of the named resources (all that are up when none is named). A named resource that is
/// not up is an error (exit 20); none up at all gives an empty list.
func collectStatuses(_ resources: [String], common: CommonOptions, skipDown: Bool = false) throws -> [ResourceStatus] {
    let names = resources.isEmpty ? resourcesUp(common) : resources
    var statuses: [ResourceStatus] = []
    for name in names {
        do {
            let reply = try sendControl(ControlRequest(.status), common: common, resource: name)
            if let status = reply.status { statuses.append(status) }
        } catch let error as CLIError where (resources.isEmpty || skipDown) && error.status == .notUp {
            continue   // not up, or went down meanwhile
        }
    }
    return statuses
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show role, disk and connection state of running resources (all when none is named).",
        discussion: """
            The text form follows DRBD 9's `drbdadm status`; --verbose adds node ids, protocol and the export, --statistics the counters (sent, received, out-of-sync, pending, unacked) and, during a resync, its rates and ETA. --json prints an array in the schema of `drbdsetup status --json`, with repd's own keys (nbd-uri, repd-*). Exit 20 when a named resource, or no resource at all, is not up.
            Examples: repd status
                      repd status r0 --verbose --statistics
                      repd status r0 --json
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names (default: every resource up on this node).") var resources: [String] = []
    @Flag(help: "Print JSON.") var json = false
    @Flag(name: .shortAndLong, help: "More detail: node ids, protocol, export.") var verbose = false
    @Flag(name: .shortAndLong, help: "Counters, rates and ETA.") var statistics = false

    func run() async throws {
        try await Repd.guarded {
            let statuses = try collectStatuses(resources, common: common)
            if json {
                print(try ControlCodec.prettyJSON(statuses))
            } else {
                print(ResourceStatus.text(statuses, verbose: verbose, statistics: statistics, node: common.node, runDirectory: common.runDir),
                      terminator: statuses.isEmpty ? "\n" : "")
            }
            if statuses.isEmpty { throw ExitCode(ExitStatus.notUp.rawValue) }
        }
    }
}

struct OverviewVerb: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overview",
        abstract: "One line per resource; during a resync or verify, DRBD's progress bar, ETA and speed.",
        discussion: """
            --watch[=SECONDS] redraws in place every SECONDS (default 2) until interrupted, when the output is a terminal; otherwise one snapshot is printed.
            Examples: repd overview
                      repd overview --watch=1
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names (default: every resource up on this node).") var resources: [String] = []
    @Flag(help: "Redraw in place until interrupted (on a terminal).") var watch = false
    @Option(help: .hidden) var interval: Double = 2

    func run() async throws {
        try await Repd.guarded {
            let terminal = Terminal.isTerminal
            guard watch && terminal else {
                let statuses = try collectStatuses(resources, common: common)
                if statuses.isEmpty {
                    print(ResourceStatus.noneUpText(node: common.node, runDirectory: common.runDir))
                    throw ExitCode(ExitStatus.notUp.rawValue)
                }
                for line in Overview.lines(statuses, width: terminal ? terminalWidth() : Int.max) { print(line) }
                return
            }
            guard interval > 0 else { throw CLIError(.failed, "--watch needs a positive number of seconds") }
            Terminal.restoreCursorAndExitOnInterrupt()
            print("\u{1B}[?25l", terminator: "")
            while true {
                let statuses = (try? collectStatuses(resources, common: common, skipDown: true)) ?? []
                var frame = "\u{1B}[H\u{1B}[2J"
                frame += "repd overview on \(common.node), every \(interval) s (Ctrl-C to stop)\n\n"
                if statuses.isEmpty {
                    frame += ResourceStatus.noneUpText(node: common.node, runDirectory: common.runDir) + "\n"
                } else {
                    frame += Overview.lines(statuses, width: terminalWidth()).joined(separator: "\n") + "\n"
                }
                print(frame, terminator: "")
                Terminal.flush()
                try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            }
        }
    }

    private func terminalWidth() -> Int { Terminal.columns() }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one line per state change, like `drbdsetup events2`, until interrupted.",
        discussion: """
            Starts with the current state (`exists` lines, then `exists -`); --now stops there. Then a `change` line for every change of role, disk, connection, replication or resync progress, `create`/`destroy` when a resource goes up or down. --json prints one JSON object per line.
            Example (wait for a resync to end):
              repd events --json | grep -m1 '"replication":"Established"'
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names (default: every resource up on this node).") var resources: [String] = []
    @Flag(help: "One JSON object per line.") var json = false
    @Flag(help: "Print the current state and exit.") var now = false
    @Option(help: ArgumentHelp("Seconds between polls of the daemons.", valueName: "SECONDS")) var poll: Double = 0.5

    func run() async throws {
        try await Repd.guarded {
            func emit(_ events: [StatusEvent]) {
                guard !events.isEmpty else { return }
                for event in events { print(json ? event.json : event.line) }
                fflush(nil)
            }
            var previous: [String: ResourceStatus] = [:]
            let first = try collectStatuses(resources, common: common, skipDown: true)
            for status in first { previous[status.name] = status }
            emit(StatusEvent.initialState(first))
            if now { return }
            while true {
                try await Task.sleep(nanoseconds: UInt64(max(0.05, poll) * 1e9))
                let current = (try? collectStatuses(resources, common: common, skipDown: true)) ?? []
                var seen = Set<String>()
                for status in current {
                    seen.insert(status.name)
                    emit(StatusEvent.events(from: previous[status.name], to: status))
                    previous[status.name] = status
                }
                for (name, old) in previous where !seen.contains(name) {
                    emit(StatusEvent.destroyed(old))
                    previous[name] = nil
                }
            }
        }
    }
}

struct ShowGI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-gi",
        abstract: "Show the generation identifiers of a resource, with their meaning in plain words.",
        discussion: """
            Asks the running daemon when the resource is up, otherwise reads the metadata on disk.
            Example: repd show-gi r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded {
            if PIDFile.runningPID(RunDirectory(path: common.runDir, resource: resource).pidFile) != nil,
               let status = try sendControl(ControlRequest(.status), common: common, resource: resource).status,
               let explanation = GenerationExplanation(status: status) {
                print(explanation.text())
                return
            }
            let config = try common.resolve(resource)
            let (data, store) = try openStorage(config, create: false)
            defer { store.close(); data.close() }
            do throws(MetadataStore.Failure) {
                let superblock = try store.readSuperblock(expectedResource: config.name)
                let bitmap = try store.readBitmap()
                let explanation = GenerationExplanation(
                    resource: resource, generation: superblock.generation, flags: GenerationExplanation.Flags(superblock.flags),
                    diskState: nil, outOfSyncKiB: UInt64(bitmap.outOfSyncCount) * 4)
                print(explanation.text())
            } catch {
                throw CLIError(.metadata, error.description)
            }
        }
    }
}
