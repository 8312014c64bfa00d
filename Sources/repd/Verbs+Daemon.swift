import ArgumentParser
import ControlProtocol
import RepdConfig
import RepdDaemon
import RepdSystem

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a resource on this node: its block device and its NBD export.",
        discussion: """
            Returns once the resource is ready (exit 0), or fails with the reason. The resource's `device` path (e.g. /dev/drbd1) becomes a link to the kernel block device repd attaches (the kernel's nbd driver, else nbdfuse and a loop device), read-only while the node is Secondary; `device none;` or --no-device only exports. The export is the unix socket RUN_DIR/RES.sock (export name RES); the log is RUN_DIR/RES.log.
            Example: repd up r0 && repd primary --force r0 && pvcreate /dev/drbd1
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Stay in the foreground and log to standard error.") var foreground = false
    @Flag(help: "Attach no block device (as `device none;`): export over NBD only.") var noDevice = false
    @Option(help: .hidden) var readyFd: Int32?

    func run() async throws {
        try await Repd.guarded {
            var config = try common.resolve(resource)
            if noDevice { config.local.device = HostConfig.noDevice }
            let runDir = common.runDir
            do { try ProcessSupport.makeDirectory(runDir, mode: 0o700) } catch {
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
            ] + (noDevice ? ["--no-device"] : [])
            let outcome: DaemonSpawner.Outcome
            do {
                outcome = try DaemonSpawner.spawn(
                    executable: ProcessSupport.executablePath(), arguments: arguments, logPath: paths.logFile, timeoutSeconds: 60)
            } catch {
                throw CLIError(.failed, "cannot start the daemon: \(error)")
            }
            switch outcome {
            case .ready(let pid, let warnings):
                for warning in warnings { ProcessSupport.writeStandardError("\(resource): warning: \(warning)\n") }
                let device = config.local.wantsDevice ? "device \(config.local.device); " : ""
                print("\(resource): up on node \(common.node) (pid \(pid)); \(device)export \(paths.nbdURI)")
            case .failed(let reason, let warnings):
                for warning in warnings { ProcessSupport.writeStandardError("\(resource): warning: \(warning)\n") }
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
        abstract: "Stop a resource cleanly: detach its block device, finish in-flight writes, flush metadata, close the export.",
        discussion: """
            Refused while the block device is mounted, held by LVM/device-mapper or used as swap (the reply names what holds it), unless --force. For a resource whose daemon died, removes the links and devices it left behind.
            Example: repd down r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Go down even if the block device is in use (its users then get I/O errors).") var force = false

    func run() async throws {
        try await Repd.guarded {
            let paths = RunDirectory(path: common.runDir, resource: resource)
            if PIDFile.runningPID(paths.pidFile) == nil {
                let undone = DeviceLeftovers.undo(runDirectory: common.runDir, resource: resource)
                if !undone.isEmpty {
                    for line in undone { print("\(resource): \(line)") }
                    print("\(resource): down (its daemon had already stopped)")
                    return
                }
            }
            let reply = try sendControl(ControlRequest(.down, force: force), common: common, resource: resource)
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
        abstract: "Demote the resource to Secondary on this node (its device becomes read-only, its export refuses writes).",
        discussion: """
            Refused while the block device is mounted, held by LVM/device-mapper or used as swap (the reply names what holds it), unless --force.
            Example: repd secondary r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Demote even if the block device is in use (its writers then get errors).") var force = false

    func run() async throws {
        try await Repd.guarded {
            let reply = try sendControl(ControlRequest(.secondary, force: force), common: common, resource: resource)
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
