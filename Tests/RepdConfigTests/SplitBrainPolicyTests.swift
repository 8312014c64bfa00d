import RepdConfig
import RepdCore
import XCTest

/// `resource r {`, then `body` on line 2, then two complete hosts `a` and `b`.
private func resource(_ body: String) -> String {
    "resource r {\n" + body + "\n"
        + "  on a { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.1:7789; meta-disk internal; }\n"
        + "  on b { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.2:7789; meta-disk internal; }\n"
        + "}\n"
}

/// Which value each split-brain option accepts (drbd.conf(5), DRBD 8.4), and that every other
/// value of these options is an error at parse time, with file:line:column.
final class SplitBrainPolicyTests: XCTestCase {
    /// Both handlers the call-* policies need, so that only the value itself is under test.
    static let handlers = "  handlers { pri-lost-after-sb \"reboot -f\"; pri-lost \"reboot -f\"; }\n"

    static let valid: [(option: String, values: [String])] = [
        ("after-sb-0pri", [
            "disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes",
            "discard-least-changes", "discard-node-a",
        ]),
        ("after-sb-1pri", ["disconnect", "consensus", "violently-as0p", "discard-secondary", "call-pri-lost-after-sb"]),
        ("after-sb-2pri", ["disconnect", "violently-as0p", "call-pri-lost-after-sb"]),
        ("rr-conflict", ["disconnect", "retry-connect", "violently", "call-pri-lost"]),
    ]

    static let expectedChoices = [
        "after-sb-0pri": "disconnect, discard-younger-primary, discard-older-primary, discard-zero-changes, "
            + "discard-least-changes, discard-node-NODENAME",
        "after-sb-1pri": "disconnect, consensus, violently-as0p, discard-secondary, call-pri-lost-after-sb",
        "after-sb-2pri": "disconnect, violently-as0p, call-pri-lost-after-sb",
        "rr-conflict": "disconnect, retry-connect, violently, call-pri-lost",
    ]

    /// Every value of any of the four options, tried in each of them.
    func testEveryValueInEveryOption() {
        let everyValue = Self.valid.flatMap(\.values).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var errors = 0
        for (option, accepted) in Self.valid {
            for value in everyValue {
                let found = diagnostics(resource("  net { \(option) \(value); }\n" + Self.handlers))
                if accepted.contains(value) {
                    XCTAssertEqual(found, [], "\(option) \(value)")
                    continue
                }
                errors += 1
                let elsewhere = Self.valid.filter { $0.option != option && $0.values.contains(value) }.map(\.option)
                let column = 9 + option.count + 1
                let expected = "t.res:2:\(column): '\(value)' is not a valid \(option) policy (it is valid for "
                    + elsewhere.joined(separator: " or ") + "); expected one of: " + Self.expectedChoices[option]!
                XCTAssertEqual(found, [expected], "\(option) \(value)")
            }
        }
        XCTAssertEqual(errors, 4 * 13 - 18)
    }

    func testExamples() {
        XCTAssertEqual(
            diagnostics(resource("  net { after-sb-0pri consensus; }")),
            ["t.res:2:23: 'consensus' is not a valid after-sb-0pri policy (it is valid for after-sb-1pri); expected "
                + "one of: \(Self.expectedChoices["after-sb-0pri"]!)"])
        XCTAssertEqual(
            diagnostics(resource("  net {\n    after-sb-2pri discard-secondary;\n  }")),
            ["t.res:3:19: 'discard-secondary' is not a valid after-sb-2pri policy (it is valid for after-sb-1pri); "
                + "expected one of: \(Self.expectedChoices["after-sb-2pri"]!)"])
        XCTAssertEqual(
            diagnostics(resource("  net { after-sb-1pri discard-node-b; }")),
            ["t.res:2:23: 'discard-node-b' is not a valid after-sb-1pri policy (it is valid for after-sb-0pri); "
                + "expected one of: \(Self.expectedChoices["after-sb-1pri"]!)"])
        XCTAssertEqual(
            diagnostics(resource("  net { after-sb-0pri discard-node-; }")),
            ["t.res:2:23: invalid value 'discard-node-' for 'after-sb-0pri'; expected one of: "
                + "\(Self.expectedChoices["after-sb-0pri"]!)"])
    }

    /// All errors of the file in one run, each with its line.
    func testSeveralBadPoliciesAtOnce() {
        let text = resource("""
              net {
                after-sb-0pri consensus;
                after-sb-1pri discard-least-changes;
                after-sb-2pri discard-secondary;
                rr-conflict call-pri-lost-after-sb;
              }
            """)
        let found = diagnostics(text)
        XCTAssertEqual(found.map { $0.split(separator: ":").prefix(2).joined(separator: ":") }, ["t.res:3", "t.res:4", "t.res:5", "t.res:6"])
    }

    // MARK: Handlers the call-* policies need

    func testCallPolicyNeedsItsHandler() {
        let purposeSB = "it runs on a Primary whose changes a split brain discards and that cannot become Secondary"
        XCTAssertEqual(
            diagnostics(resource("  net { after-sb-1pri call-pri-lost-after-sb; }")),
            ["t.res:2:23: after-sb-1pri call-pri-lost-after-sb needs a pri-lost-after-sb handler, and resource 'r' "
                + "has none; add one to its handlers section (\(purposeSB))"])
        XCTAssertEqual(
            diagnostics(resource("  net { after-sb-2pri call-pri-lost-after-sb; }")),
            ["t.res:2:23: after-sb-2pri call-pri-lost-after-sb needs a pri-lost-after-sb handler, and resource 'r' "
                + "has none; add one to its handlers section (\(purposeSB))"])
        XCTAssertEqual(
            diagnostics(resource("  net { rr-conflict call-pri-lost; }")),
            ["t.res:2:21: rr-conflict call-pri-lost needs a pri-lost handler, and resource 'r' has none; add one to "
                + "its handlers section (it runs on a Primary that a resync would overwrite)"])
        // The other handler does not count.
        XCTAssertEqual(
            diagnostics(resource("  net { rr-conflict call-pri-lost; }\n  handlers { pri-lost-after-sb \"x\"; }")).count, 1)
        // With the handler, here or in common, all is well.
        XCTAssertEqual(diagnostics(resource("  net { after-sb-1pri call-pri-lost-after-sb; }\n" + Self.handlers)), [])
        XCTAssertEqual(
            diagnostics("common { handlers { pri-lost-after-sb \"x\"; } }\n"
                + resource("  net { after-sb-2pri call-pri-lost-after-sb; }")),
            [])
    }

    // MARK: The policies as the resolver takes them

    func testSplitBrainPolicies() throws {
        let text = resource("""
              net {
                after-sb-0pri discard-node-b;
                after-sb-1pri consensus;
                after-sb-2pri violently-as0p;
                always-asbp;
              }
            """)
        let directory = try makeDirectory(["r.res": text], testCase: self)
        let resolved = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a")
        XCTAssertEqual(
            resolved.net.splitBrainPolicies,
            SplitBrainPolicies(
                afterSB0Pri: .discardNode("b"), afterSB1Pri: .consensus, afterSB2Pri: .violentlyAs0p, alwaysASBP: true))
        XCTAssertEqual(NetOptions().splitBrainPolicies, SplitBrainPolicies())
    }
}
