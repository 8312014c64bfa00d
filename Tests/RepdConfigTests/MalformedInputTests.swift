import RepdConfig
import XCTest

/// Two complete `on` sections, one line each, for resources whose other parts are under test.
private let hostA = "  on a { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.1:7789; meta-disk internal; }\n"
private let hostB = "  on b { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.2:7789; meta-disk internal; }\n"

/// `resource r {`, then `body` from line 2, then the two hosts.
private func resource(_ body: String) -> String {
    "resource r {\n" + body + "\n" + hostA + hostB + "}\n"
}

/// Malformed configurations and the exact diagnostics they must produce, `file:line:column: message`.
final class MalformedInputTests: XCTestCase {
    private struct Case {
        var name: String
        var text: String
        var expected: [String]
    }

    private let cases: [Case] = [
        // Unknown names, with suggestions.
        Case(
            name: "unknown option with a suggestion",
            text: resource("  net {\n    after-sb-0prii disconnect;\n  }"),
            expected: ["t.res:3:5: unknown net option 'after-sb-0prii'; did you mean 'after-sb-0pri'?"]),
        Case(
            name: "option in the wrong section",
            text: resource("  net { resync-rate 10M; }"),
            expected: ["t.res:2:9: unknown net option 'resync-rate'; it belongs in the 'disk' section"]),
        Case(
            name: "DRBD 8.3 option name",
            text: resource("  disk { rate 10M; }"),
            expected: ["t.res:2:10: unknown disk option 'rate'; did you mean 'resync-rate'?"]),
        Case(
            name: "unknown option without a close match",
            text: resource("  disk { frobnicate; }"),
            expected: ["t.res:2:10: unknown disk option 'frobnicate'"]),
        Case(
            name: "unknown handler",
            text: resource("  handlers { split-brian \"echo\"; }"),
            expected: ["t.res:2:14: unknown handler 'split-brian'; did you mean 'split-brain'?"]),
        Case(
            name: "unknown section",
            text: resource("  startpu { }"),
            expected: ["t.res:2:3: unknown section 'startpu' in resource 'r'; did you mean 'startup'?"]),
        Case(
            name: "unknown top-level keyword",
            text: "resorce r0 { }\n",
            expected: [
                "t.res:1:1: unknown keyword 'resorce'; expected 'global', 'common', 'resource' or 'include'; did you mean 'resource'?"
            ]),
        Case(
            name: "unknown option in an on section",
            text: "resource r {\n  on a { device /dev/drbd1; disk /dev/sdb1; adress 127.0.0.1:7789; meta-disk internal; }\n" + hostB + "}\n",
            expected: [
                "t.res:2:3: 'on a' in resource 'r' has no 'address'; set it in the section or in the resource body",
                "t.res:2:45: unknown option 'adress' in 'on a'; did you mean 'address'?",
            ]),
        Case(
            name: "syncer section from DRBD 8.3",
            text: resource("  syncer { rate 10M; }"),
            expected: [
                "t.res:2:3: the 'syncer' section was removed in DRBD 8.4: put resync-rate, al-extents and the c-* options in 'disk', verify-alg and csums-alg in 'net', cpu-mask in 'options'"
            ]),
        Case(
            name: "net option in the resource body",
            text: resource("  allow-two-primaries;"),
            expected: ["t.res:2:3: 'allow-two-primaries' must be inside the 'net' section"]),
        Case(
            name: "on section outside a resource",
            text: "on a { }\n",
            expected: ["t.res:1:1: 'on' is only allowed inside a resource section"]),

        // Syntax.
        Case(
            name: "missing semicolon before the next line",
            text: resource("  net {\n    protocol C\n    allow-two-primaries;\n  }"),
            expected: ["t.res:3:14: missing ';' after 'protocol C'"]),
        Case(
            name: "missing semicolon before a closing brace",
            text: resource("  net { max-buffers 8000 }"),
            expected: ["t.res:2:21: missing ';' after 'max-buffers 8000'"]),
        Case(
            name: "missing semicolon in an on section",
            text: "resource r {\n  on a {\n    device /dev/drbd1\n    disk /dev/sdb1;\n    address 127.0.0.1:7789;\n    meta-disk internal;\n  }\n" + hostB + "}\n",
            expected: ["t.res:3:12: missing ';' after 'device /dev/drbd1'"]),
        Case(
            name: "missing semicolon and brace at the end of the file",
            text: "global {\n  usage-count no\n",
            expected: ["t.res:1:1: missing '}' to close 'global'", "t.res:2:15: missing ';' after 'usage-count no'"]),
        Case(
            name: "unterminated string",
            text: resource("  net {\n    cram-hmac-alg sha1;\n    shared-secret \"abc;\n    max-buffers 8000;\n  }"),
            expected: ["t.res:4:19: unterminated string (missing closing '\"')"]),
        Case(
            name: "unbalanced braces: section not closed",
            text: "resource r {\n  net {\n    protocol C;\n" + hostA + hostB + "}\n",
            expected: ["t.res:2:3: missing '}' to close 'net'"]),
        Case(
            name: "unbalanced braces: resource not closed before the next one",
            text: "resource r1 {\n" + hostA + hostB + "resource r2 {\n" + hostA + hostB + "}\n",
            expected: ["t.res:1:1: missing '}' to close 'resource r1'"]),
        Case(
            name: "unbalanced braces: extra closing brace",
            text: resource("") + "}\n",
            expected: ["t.res:6:1: unexpected '}' with no matching '{'"]),
        Case(
            name: "block without a name",
            text: "{ usage-count no; }\n",
            expected: ["t.res:1:1: unexpected '{' without a section name before it"]),
        Case(
            name: "quoted string where a keyword belongs",
            text: resource("  net { \"protocol\" C; }"),
            expected: ["t.res:2:9: expected a keyword, found the string \"protocol\""]),

        // Values.
        Case(
            name: "bad IPv4 address",
            text: "resource r {\n  on a { device /dev/drbd1; disk /dev/sdb1; address 192.168.0.300:7789; meta-disk internal; }\n" + hostB + "}\n",
            expected: ["t.res:2:53: invalid address '192.168.0.300:7789': '192.168.0.300' is not a valid IPv4 address"]),
        Case(
            name: "bad port",
            text: "resource r {\n  on a { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.1:70000; meta-disk internal; }\n" + hostB + "}\n",
            expected: ["t.res:2:53: invalid address '127.0.0.1:70000': port must be a number from 1 to 65535"]),
        Case(
            name: "address without port",
            text: "resource r {\n  on a { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.1; meta-disk internal; }\n" + hostB + "}\n",
            expected: ["t.res:2:53: invalid address '127.0.0.1': expected ADDRESS:PORT"]),
        Case(
            name: "IPv6 address without brackets",
            text: "resource r {\n  on a { device /dev/drbd1; disk /dev/sdb1; address ipv6 fd00::1:7789; meta-disk internal; }\n" + hostB + "}\n",
            expected: ["t.res:2:58: invalid address 'fd00::1:7789': IPv6 addresses must be in brackets, e.g. ipv6 [fd00::1]:7789"]),
        Case(
            name: "unsupported address family",
            text: "resource r {\n  on a { device /dev/drbd1; disk /dev/sdb1; address sdp 127.0.0.1:7789; meta-disk internal; }\n" + hostB + "}\n",
            expected: ["t.res:2:53: address family 'sdp' is not supported by repd; use ipv4 or ipv6"]),
        Case(
            name: "bad meta-disk index",
            text: "resource r {\n  on a { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.1:7789; meta-disk /dev/sdc[x]; }\n" + hostB + "}\n",
            expected: ["t.res:2:79: invalid meta-disk index in '/dev/sdc[x]'; expected a number such as /dev/sdc[0]"]),
        Case(
            name: "relative device path",
            text: "resource r {\n  on a { device drbd1; disk /dev/sdb1; address 127.0.0.1:7789; meta-disk internal; }\n" + hostB + "}\n",
            expected: ["t.res:2:17: device 'drbd1' must be an absolute path such as /dev/drbd1"]),
        Case(
            name: "bad number",
            text: resource("  net { ko-count seven; }"),
            expected: ["t.res:2:18: invalid value 'seven' for 'ko-count'; expected a number (optionally with K, M or G)"]),
        Case(
            name: "bad unit",
            text: resource("  disk { resync-rate 10X; }"),
            expected: ["t.res:2:22: invalid value '10X' for 'resync-rate'; expected a number in KiB/s or with a unit (K, M, G or s)"]),
        Case(
            name: "unit on a time",
            text: resource("  net { ping-timeout 5s; }"),
            expected: ["t.res:2:22: invalid value '5s' for 'ping-timeout'; expected a whole number of tenths of a second"]),
        Case(
            name: "number out of range",
            text: resource("  net { timeout 700; }"),
            expected: ["t.res:2:17: value 700 for 'timeout' is out of range (1 to 600 tenths of a second)"]),
        Case(
            name: "size not a whole number of the default unit",
            text: resource("  disk { resync-rate 1s; }"),
            expected: ["t.res:2:22: value 1s for 'resync-rate' is not a whole number of KiB/s"]),
        Case(
            name: "rate below the minimum, with a unit",
            text: resource("  disk { c-max-rate 100k; }"),
            expected: ["t.res:2:21: value 100k for 'c-max-rate' is out of range (250 to 4194304 KiB/s)"]),
        Case(
            name: "bad enum value with a suggestion",
            text: resource("  disk { on-io-error detatch; }"),
            expected: [
                "t.res:2:22: invalid value 'detatch' for 'on-io-error'; expected one of: pass_on, call-local-io-error, detach; did you mean 'detach'?"
            ]),
        Case(
            name: "bad flag value",
            text: resource("  net { allow-two-primaries maybe; }"),
            expected: ["t.res:2:29: invalid value 'maybe' for 'allow-two-primaries'; expected yes or no (or no value)"]),
        Case(
            name: "too many values",
            text: resource("  net { protocol C A; }"),
            expected: ["t.res:2:20: too many values for 'protocol'; it takes one value"]),
        Case(
            name: "missing value",
            text: resource("  net { protocol; }"),
            expected: ["t.res:2:9: missing value for 'protocol'"]),
        Case(
            name: "global options",
            text: "global { usage-count maybe; minor-count 0; }\n",
            expected: [
                "t.res:1:22: invalid value 'maybe' for 'usage-count'; expected one of: yes, no, ask",
                "t.res:1:41: value 0 for 'minor-count' is out of range (1 to 1048575)",
            ]),

        // Duplicates.
        Case(
            name: "duplicate option",
            text: resource("  net {\n    max-buffers 8000;\n    max-buffers 9000;\n  }"),
            expected: ["t.res:4:5: duplicate option 'max-buffers' in net section (first set at 3:5)"]),
        Case(
            name: "duplicate option through its negated form",
            text: resource("  disk { disk-flushes yes; no-disk-flushes; }"),
            expected: ["t.res:2:28: duplicate option 'no-disk-flushes' in disk section (first set at 2:10)"]),
        Case(
            name: "duplicate handler",
            text: resource("  handlers { fence-peer \"a\"; fence-peer \"b\"; }"),
            expected: ["t.res:2:30: duplicate handler 'fence-peer' (first set at 2:14)"]),
        Case(
            name: "duplicate section",
            text: resource("  net { }\n  net { }"),
            expected: ["t.res:3:3: duplicate net section in resource 'r' (first at 2:3)"]),
        Case(
            name: "duplicate resource",
            text: resource("") + resource(""),
            expected: ["t.res:6:10: duplicate resource 'r' (first defined at t.res:1:10)"]),
        Case(
            name: "two on sections with the same address",
            text: "resource r {\n" + hostA
                + "  on b { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.1:7789; meta-disk internal; }\n}\n",
            expected: ["t.res:3:45: 'on b' uses the same address as 'on a' (127.0.0.1:7789); each node needs its own address"]),

        // Rules across options.
        Case(
            name: "protocol A with allow-two-primaries",
            text: resource("  net {\n    protocol A;\n    allow-two-primaries;\n  }"),
            expected: ["t.res:4:5: allow-two-primaries requires protocol C (resource 'r' uses protocol A)"]),
        Case(
            name: "legacy protocol B with allow-two-primaries yes",
            text: resource("  protocol B;\n  net { allow-two-primaries yes; }"),
            expected: ["t.res:3:9: allow-two-primaries requires protocol C (resource 'r' uses protocol B)"]),
        Case(
            name: "allow-two-primaries no is fine with protocol A",
            text: resource("  net { protocol A; allow-two-primaries no; }"),
            expected: []),
        Case(
            name: "after-sb-2pri value of after-sb-1pri",
            text: resource("  net { after-sb-2pri discard-secondary; }"),
            expected: [
                "t.res:2:23: 'discard-secondary' is not a valid after-sb-2pri policy (it is valid for after-sb-1pri); expected one of: disconnect, violently-as0p, call-pri-lost-after-sb"
            ]),
        Case(
            name: "after-sb-1pri value of after-sb-0pri",
            text: resource("  net { after-sb-1pri discard-zero-changes; }"),
            expected: [
                "t.res:2:23: 'discard-zero-changes' is not a valid after-sb-1pri policy (it is valid for after-sb-0pri); expected one of: disconnect, consensus, violently-as0p, discard-secondary, call-pri-lost-after-sb"
            ]),
        Case(
            name: "rr-conflict misspelt",
            text: resource("  net { rr-conflict violentl; }"),
            expected: [
                "t.res:2:21: invalid value 'violentl' for 'rr-conflict'; expected one of: disconnect, retry-connect, violently, call-pri-lost; did you mean 'violently'?"
            ]),
        Case(
            name: "discard-node of a host that is not in the resource",
            text: resource("  net { after-sb-0pri discard-node-c; }"),
            expected: ["t.res:2:23: after-sb-0pri names 'c', which is not a host of resource 'r'"]),
        Case(
            name: "unsupported cram-hmac-alg",
            text: resource("  net { cram-hmac-alg md5; shared-secret s3cret; }"),
            expected: ["t.res:2:23: unsupported cram-hmac-alg 'md5'; repd supports sha1 and sha256"]),
        Case(
            name: "shared-secret longer than 64 characters",
            text: resource("  net { cram-hmac-alg sha1; shared-secret \"\(String(repeating: "x", count: 65))\"; }"),
            expected: ["t.res:2:43: shared-secret is 65 characters long; at most 64 are allowed"]),
        Case(
            name: "cram-hmac-alg without shared-secret",
            text: resource("  net { cram-hmac-alg sha256; }"),
            expected: ["t.res:2:9: cram-hmac-alg is set without a shared-secret in resource 'r'"]),
        Case(
            name: "unsupported verify-alg and csums-alg",
            text: resource("  net { verify-alg md5; csums-alg crc32; }"),
            expected: [
                "t.res:2:20: unsupported verify-alg 'md5'; repd supports crc32c, sha1 and sha256",
                "t.res:2:35: unsupported csums-alg 'crc32'; repd supports crc32c, sha1 and sha256",
            ]),
        Case(
            name: "on section missing disk",
            text: "resource r {\n  on a { device /dev/drbd1; address 127.0.0.1:7789; meta-disk internal; }\n" + hostB + "}\n",
            expected: ["t.res:2:3: 'on a' in resource 'r' has no 'disk'; set it in the section or in the resource body"]),
        Case(
            name: "on section missing several statements",
            text: "resource r {\n  on a { disk /dev/sdb1; }\n" + hostB + "}\n",
            expected: [
                "t.res:2:3: 'on a' in resource 'r' has no 'device', 'address' and 'meta-disk'; set them in the section or in the resource body"
            ]),
        Case(
            name: "three on sections",
            text: "resource r {\n" + hostA + hostB
                + "  on c { device /dev/drbd1; disk /dev/sdb1; address 127.0.0.3:7789; meta-disk internal; }\n}\n",
            expected: ["t.res:4:3: resource 'r' has more than two 'on' sections; repd replicates between exactly two nodes"]),
        Case(
            name: "resource without on sections",
            text: "resource r { }\n",
            expected: ["t.res:1:10: resource 'r' has no 'on' section; add one 'on HOST { ... }' per node"]),
        Case(
            name: "become-primary-on both without allow-two-primaries",
            text: resource("  startup { become-primary-on both; }"),
            expected: ["t.res:2:13: become-primary-on with two nodes needs allow-two-primaries in the net section"]),
        Case(
            name: "become-primary-on an unknown host",
            text: resource("  startup { become-primary-on bb; }"),
            expected: ["t.res:2:31: become-primary-on names 'bb', which is not a host of resource 'r'"]),
        Case(
            name: "second volume",
            text: "resource r {\n  volume 0 { device /dev/drbd1; }\n  volume 1 { device /dev/drbd2; }\n" + hostA + hostB + "}\n",
            expected: ["t.res:3:3: repd replicates one volume per resource; 'volume 1' is a second volume (first: 'volume 0' at 2:3)"]),
        Case(
            name: "include of a missing file",
            text: "include \"does-not-exist.conf\";\n",
            expected: ["t.res:1:9: cannot include 'does-not-exist.conf': no such file"]),
        Case(
            name: "include of a pattern that matches nothing is fine",
            text: "include \"nothing-here-*.conf\";\n",
            expected: []),
    ]

    func testMalformedInputs() {
        for testCase in cases {
            XCTAssertEqual(diagnostics(testCase.text), testCase.expected, testCase.name)
        }
    }

    /// A file full of mistakes: every one is reported, in file order, and recovery keeps the
    /// valid parts in view (the second `on` section is still checked).
    func testEveryErrorOfAFileIsReported() {
        let text = """
            global {
                usage-count maybe;
            }
            resource r0 {
                net {
                    protocol C
                    after-sb-0prii disconnect;
                    max-buffers 8000;
                    max-buffers 9000;
                    cram-hmac-alg md5;
                    shared-secret "s;
                }
                disk { resync-rate 10X; }
                on alpha {
                    device /dev/drbd1;
                    address 10.0.0.1:7789;
                    meta-disk internal;
                }
                on beta {
                    device /dev/drbd1;
                    disk /dev/sdb1;
                    address 10.0.0.1:99999;
                    meta-disk internal;
                }
            }
            resource r0 {
                on gamma { device /dev/drbd2; disk /dev/sdc; address 10.0.0.3:7789; meta-disk internal; }
            }

            """
        XCTAssertEqual(diagnostics(text, file: "r0.res"), [
            "r0.res:2:17: invalid value 'maybe' for 'usage-count'; expected one of: yes, no, ask",
            "r0.res:6:18: missing ';' after 'protocol C'",
            "r0.res:7:9: unknown net option 'after-sb-0prii'; did you mean 'after-sb-0pri'?",
            "r0.res:9:9: duplicate option 'max-buffers' in net section (first set at 8:9)",
            "r0.res:10:23: unsupported cram-hmac-alg 'md5'; repd supports sha1 and sha256",
            "r0.res:11:23: unterminated string (missing closing '\"')",
            "r0.res:13:24: invalid value '10X' for 'resync-rate'; expected a number in KiB/s or with a unit (K, M, G or s)",
            "r0.res:14:5: 'on alpha' in resource 'r0' has no 'disk'; set it in the section or in the resource body",
            "r0.res:22:17: invalid address '10.0.0.1:99999': port must be a number from 1 to 65535",
            "r0.res:26:10: duplicate resource 'r0' (first defined at r0.res:4:10)",
        ])
    }

    func testDiagnosticsFormat() {
        let located = ConfigDiagnostic(location: SourceLocation(file: "r0.res", line: 12, column: 5), message: "boom")
        XCTAssertEqual(located.description, "r0.res:12:5: boom")
        XCTAssertEqual(located.location?.description, "r0.res:12:5")
        let unlocated = ConfigDiagnostic(location: nil, message: "no location")
        XCTAssertEqual(unlocated.description, "no location")
        XCTAssertEqual(ConfigError(diagnostics: [located, unlocated]).description, "r0.res:12:5: boom\nno location")
    }
}
