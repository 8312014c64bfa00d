import ArgumentParser
import RepdSystem

@main
struct Repd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repd",
        abstract: "A replicated block device: DRBD's resource files, exported over NBD.",
        discussion: """
            Resource files use DRBD 8.4 syntax. Typical first use on each node:
              repd create-md r0 && repd up r0
            then on the node whose data counts:
              repd primary --force r0
            Exit codes: 0 ok, 1 refused or failed, 10 configuration error, 11 metadata error, 12 device error, 20 resource not up, 21 resource already up, 64 usage error.
            """,
        version: "0.1.0",
        subcommands: [
            CreateMD.self, DumpMD.self, Up.self, Down.self, Primary.self, Secondary.self, Status.self, DumpConfig.self,
            PauseSync.self, ResumeSync.self, Invalidate.self, InvalidateRemote.self, Verify.self, NewCurrentUUID.self,
            Connect.self, Disconnect.self, Detach.self, Attach.self, SuspendIO.self, ResumeIO.self, Outdate.self, FencePeerOutdate.self,
            OverviewVerb.self, Events.self, ShowGI.self, RoleVerb.self, ConnectionStateVerb.self, DiskStateVerb.self,
            WaitConnect.self, WaitSync.self, Metrics.self, Adjust.self, Resize.self,
        ]
    )

    /// `--watch=SECONDS` (an option with an optional value) becomes `--watch --interval SECONDS`.
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst().flatMap { argument -> [String] in
            argument.hasPrefix("--watch=") ? ["--watch", "--interval", String(argument.dropFirst("--watch=".count))] : [argument]
        }
        await main(hoistingGlobalOptions(Array(arguments)))
    }

    /// The options every verb takes may also come before the verb, as drbdadm's do
    /// (`repd -c DIR up r0`): they move to just after it.
    static func hoistingGlobalOptions(_ arguments: [String]) -> [String] {
        let taking = ["-c", "--config-dir", "--node", "--run-dir"]
        var global: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if taking.contains(argument), index + 1 < arguments.count {
                global += [argument, arguments[index + 1]]
                index += 2
            } else if taking.dropFirst().contains(where: { argument.hasPrefix($0 + "=") }) {
                global.append(argument)
                index += 1
            } else {
                break
            }
        }
        guard !global.isEmpty, index < arguments.count, !arguments[index].hasPrefix("-") else { return arguments }
        return [arguments[index]] + global + arguments[(index + 1)...]
    }

    /// Runs a verb, turning our errors into their exit status and a one-line message.
    static func guarded(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as CLIError {
            printError("repd: \(error.message)")
            throw ExitCode(error.status.rawValue)
        }
    }
}

func printError(_ text: String) {
    var stderr = StandardError()
    print(text, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        ProcessSupport.writeStandardError(string)
    }
}
