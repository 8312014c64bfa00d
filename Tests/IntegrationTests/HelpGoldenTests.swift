import Foundation
import XCTest

/// The help text of every verb is pinned: a change to it shows up here and must be deliberate
/// (regenerate with REPD_UPDATE_GOLDEN=1 swift test --filter HelpGoldenTests, and review the diff).
/// Every verb's help carries an example.
final class HelpGoldenTests: XCTestCase {
    static let verbs = [
        "create-md", "dump-md", "up", "down", "primary", "secondary", "status", "dump-config",
        "pause-sync", "resume-sync", "invalidate", "invalidate-remote", "verify", "new-current-uuid",
        "connect", "disconnect", "detach", "attach", "suspend-io", "resume-io", "outdate", "fence-peer-outdate", "overview", "events", "show-gi",
        "role", "cstate", "dstate", "wait-connect", "wait-sync",
    ]

    private func golden(_ name: String) -> URL {
        DaemonHarness.packageRoot.appendingPathComponent("Tests/IntegrationTests/Golden/help-\(name).txt")
    }

    private func check(_ name: String, _ arguments: [String], harness h: DaemonHarness) throws {
        let result = try h.run(arguments)
        XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
        // The temporary directories differ per run; they never appear in help text.
        let text = result.stdout
        let url = golden(name)
        if ProcessInfo.processInfo.environment["REPD_UPDATE_GOLDEN"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        XCTAssertEqual(text, expected, "help of `repd \(arguments.joined(separator: " "))` changed; see \(url.path)")
    }

    func testEveryVerbsHelpIsPinnedAndHasAnExample() throws {
        let h = try DaemonHarness()
        defer { h.cleanUp() }
        try check("repd", ["--help"], harness: h)
        for verb in Self.verbs {
            try check(verb, [verb, "--help"], harness: h)
            let text = try h.run([verb, "--help"]).stdout
            XCTAssertTrue(text.contains("Example"), "`repd \(verb) --help` has no example")
        }
    }

    func testTopLevelHelpListsEveryVerb() throws {
        let h = try DaemonHarness()
        defer { h.cleanUp() }
        let text = try h.run(["--help"]).stdout
        for verb in Self.verbs {
            XCTAssertTrue(text.contains("  \(verb) "), "`repd --help` does not list \(verb)")
        }
    }
}
