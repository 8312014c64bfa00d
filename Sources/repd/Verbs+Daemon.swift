import ArgumentParser
import ControlProtocol
import RepdConfig
import RepdDaemon
import RepdSystem

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a resource on this node and export it over NBD.",
        discussion: """
            Returns once the export is ready (exit 0), or fails with the reason. The export is the unix socket RUN_DIR/RES.sock (export name RES); the log is RUN_DIR/RES.log.
            Example: repd up r0 && nbdinfo 'nbd+unix:///r0?socket=/run/repd/r0.sock'
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Stay in the foreground and log to standard error.") var foreground = false
    @Option(help: .hidden) var readyFd: Int32?

    func run() async throws {
        try await Repd.guarded {
            let config = try common.resolve(resource)
            let runDir = common.runDir
            do { try ProcessSupport.makeDirectory(runDir) } catch {
                throw CLIError(.failed, "cannot create run directory: \(error)")
            }
            let paths = RunDirectory(path: runDir, resource: resource)
            if let pid = PIDFile.runningPID(paths.pidFile) {
                throw CLIError(.alreadyUp, "\(resource) is already up on node \(common.node) (pid \(pid), run dir \(runDir))")
            }
            if foreground || readyFd != nil {
                let outcome = await DaemonMain.run(config: config, node: common.node, runDirectory: runDir, readyDescriptor: readyFd)
                switch outcome {
                case .stopped: return
                case .alreadyRunning(let message): throw CLIError(.alreadyUp, message)
                case .failed(let message): throw CLIError(.failed, message)
                }
            }
            let arguments = [
                "up", resource, "--ready-fd", "\(DaemonSpawner.readyDescriptor)",
                "--config-dir", common.configDir, "--node", common.node, "--run-dir", runDir,
            ]
            let outcome: DaemonSpawner.Outcome
            do {
                outcome = try DaemonSpawner.spawn(
                    executable: ProcessSupport.executablePath(), arguments: arguments, logPath: paths.logFile, timeoutSeconds: 60)
            } catch {
                throw CLIError(.failed, "cannot start the daemon: \(error)")
            }
            switch outcome {
            case .ready(let pid):
                print("\(resource): up on node \(common.node) (pid \(pid)); export \(paths.nbdURI)")
            case .failed(let reason):
                let status: ExitStatus = reason.contains("already up") ? .alreadyUp
                    : reason.contains("metadata") ? .metadata : .failed
                throw CLIError(status, "\(resource): \(reason)")
            }
        }
    }
}

/// Sends one request to a running daemon and returns its reply.
func sendControl(_ request: ControlRequest, common: CommonOptions, resource: String) throws -> ControlReply {
    let paths = RunDirectory(path: common.runDir, resource: resource)
    guard PIDFile.runningPID(paths.pidFile) != nil else {
        throw CLIError(.notUp, "\(resource) is not up on node \(common.node) (no daemon in \(common.runDir)); start it with `repd up \(resource)`")
    }
    do {
        let client = try UnixSocketClient(connectingTo: paths.controlSocket, timeoutSeconds: 60)
        try client.send(ControlCodec.encodeLine(request))
        guard let line = try client.readLine() else {
            throw CLIError(.failed, "\(resource): the daemon closed the control connection without a reply")
        }
        return try ControlCodec.decode(ControlReply.self, from: line)
    } catch let error as CLIError {
        throw error
    } catch {
        throw CLIError(.failed, "\(resource): control socket \(paths.controlSocket): \(error)")
    }
}

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a resource cleanly: finish in-flight writes, flush metadata, close the export.",
        discussion: "Example: repd down r0"
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded {
            let paths = RunDirectory(path: common.runDir, resource: resource)
            let reply = try sendControl(ControlRequest(.down), common: common, resource: resource)
            guard reply.ok else { throw CLIError(.failed, reply.message ?? "\(resource): down refused") }
            for _ in 0..<600 {
                if PIDFile.runningPID(paths.pidFile) == nil {
                    print("\(resource): down")
                    return
                }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            throw CLIError(.failed, "\(resource): the daemon did not stop within 60 s; see \(paths.logFile)")
        }
    }
}

struct Primary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Promote the resource to Primary on this node (its export accepts writes).",
        discussion: """
            --force makes an Inconsistent or Outdated disk UpToDate: use it once, on the node whose data is to be kept (e.g. right after create-md).
            Example: repd primary --force r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Promote even if the local disk is not UpToDate.") var force = false

    func run() async throws {
        try await Repd.guarded {
            let reply = try sendControl(ControlRequest(.primary, force: force), common: common, resource: resource)
            guard reply.ok else { throw CLIError(.failed, reply.message ?? "promotion refused") }
        }
    }
}

struct Secondary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Demote the resource to Secondary on this node (its export refuses writes).",
        discussion: "Example: repd secondary r0"
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded {
            let reply = try sendControl(ControlRequest(.secondary), common: common, resource: resource)
            guard reply.ok else { throw CLIError(.failed, reply.message ?? "demotion refused") }
        }
    }
}

struct DumpConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-config",
        abstract: "Print a resource's configuration as resolved for this node.",
        discussion: "Example: repd dump-config r0 --node alpha"
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded {
            print(try common.resolve(resource).rendered(), terminator: "")
        }
    }
}
