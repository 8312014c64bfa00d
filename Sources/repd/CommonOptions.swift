import ArgumentParser
import RepdConfig
import RepdSystem

/// Options every verb takes: where the resource files are, which node this is, where the
/// running daemons keep their sockets. Each falls back to an environment variable, then a default.
struct CommonOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("config-dir")],
            help: ArgumentHelp("Directory of resource files (env REPD_CONFIG_DIR); also before the verb, as drbdadm's -c.", valueName: "DIR"))
    var configDirOption: String?

    @Option(name: .customLong("node"), help: ArgumentHelp("This node's name, selecting the `on NAME` section (env REPD_NODE; default: the host name).", valueName: "NAME"))
    var nodeOption: String?

    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Directory for sockets, pid and log files (env REPD_RUN_DIR).", valueName: "DIR"))
    var runDirOption: String?

    static let defaultConfigDir = "/etc/repd/resources.d"
    static let defaultRunDir = "/run/repd"

    var configDir: String {
        ProcessSupport.absolutePath(configDirOption ?? environment("REPD_CONFIG_DIR") ?? Self.defaultConfigDir)
    }

    var node: String {
        nodeOption ?? environment("REPD_NODE") ?? ProcessSupport.hostName()
    }

    var runDir: String {
        ProcessSupport.absolutePath(runDirOption ?? environment("REPD_RUN_DIR") ?? Self.defaultRunDir)
    }

    func resolve(_ resource: String) throws -> ResolvedResource {
        do throws(ConfigError) {
            return try ConfigLoader(directory: configDir).resolve(resource: resource, node: node)
        } catch {
            throw CLIError(.config, error.description)
        }
    }
}

func environment(_ name: String) -> String? { ProcessSupport.environment(name) }

/// Exit codes, stable and documented in Docs/CLI.md.
enum ExitStatus: Int32 {
    case success = 0
    /// The operation was refused or failed (e.g. promotion refused, down timed out).
    case failed = 1
    /// A resource file has errors, or the resource/node is not found in it.
    case config = 10
    /// Metadata is missing, corrupt, foreign, or would be overwritten without --force.
    case metadata = 11
    /// The backing disk or metadata device can't be opened or used.
    case device = 12
    /// The resource is not up on this node (no daemon).
    case notUp = 20
    /// The resource is already up on this node.
    case alreadyUp = 21
}

struct CLIError: Error, CustomStringConvertible {
    var status: ExitStatus
    var message: String
    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }
    var description: String { message }
}
