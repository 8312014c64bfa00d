import ArgumentParser
import ControlProtocol
import NIOPosix
import RepdNet
import RepdSystem

struct Metrics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the resources' state, counters and latency histograms for Prometheus, or serve them over HTTP.",
        discussion: """
            Without --listen, prints the Prometheus text format once (for node_exporter's textfile collector: repd metrics > /var/lib/prometheus/node-exporter/repd.prom). With --listen HOST:PORT, serves GET /metrics until interrupted, asking the daemons afresh at each scrape. Resources not up are left out. The names are listed in Docs/Operations.md.
            Examples: repd metrics
                      repd metrics --listen 127.0.0.1:9942
            """)
    @OptionGroup var common: CommonOptions
    @Argument(help: "Resource names (default, or all: every resource up on this node).") var resources: [String] = []
    @Option(help: ArgumentHelp("Serve /metrics over HTTP on this address (e.g. 127.0.0.1:9942, [::1]:9942).", valueName: "HOST:PORT"))
    var listen: String?

    func validate() throws {
        if let listen, Self.hostAndPort(listen) == nil {
            throw ValidationError("--listen \(listen): expected HOST:PORT, e.g. 127.0.0.1:9942 or [::1]:9942")
        }
    }

    static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() async throws {
        try await Repd.guarded {
            let names = resources == ["all"] ? [] : resources
            let common = self.common
            let scrape: @Sendable () -> String = {
                PrometheusText.render((try? collectStatuses(names, common: common, skipDown: true)) ?? [])
            }
            guard let listen, let (host, port) = Self.hostAndPort(listen) else {
                print(scrape(), terminator: "")
                return
            }
            let server = MetricsServer(group: MultiThreadedEventLoopGroup.singleton) { (PrometheusText.contentType, scrape()) }
            let boundPort: Int
            do {
                boundPort = try await server.listen(host: host, port: port)?.port ?? port
            } catch {
                throw CLIError(.failed, "cannot listen on \(listen): \(error)")
            }
            let shown = host.contains(":") ? "[\(host)]" : host
            print("serving metrics on http://\(shown):\(boundPort)/metrics; interrupt to stop")
            Terminal.flush()
            try await server.wait()
        }
    }
}
