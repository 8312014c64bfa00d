import RepdConfig
import XCTest

/// Lexical details, seen through the public API.
final class SyntaxTests: XCTestCase {
    private func resolve(_ text: String, node: String = "a") throws -> ResolvedResource {
        let directory = try makeDirectory(["r.res": text], testCase: self)
        return try ConfigLoader(directory: directory).resolve(resource: "r", node: node)
    }

    func testCommentsQuotesAndEscapes() throws {
        let resource = try resolve(minimalResource(body: """
              # a comment line
              net {  # a comment after a brace
                cram-hmac-alg sha1;# no space before the comment
                shared-secret "a#b \\"c\\" \\\\ d";
              }
              handlers { split-brain "line1\\nline2\\ttab"; }
            """))
        XCTAssertEqual(resource.net.sharedSecret, "a#b \"c\" \\ d")
        XCTAssertEqual(resource.handlers["split-brain"], "line1\nline2\ttab")
    }

    func testCRLFLineEndingsAndTabs() throws {
        let text = "resource r {\r\n\ton a {\r\n\t\tdevice /dev/drbd1;\r\n\t\tdisk /dev/sdb1;\r\n\t\taddress 127.0.0.1:7789;\r\n\t\tmeta-disk internal;\r\n\t}\r\n}\r\n"
        XCTAssertEqual(try resolve(text).local.disk, "/dev/sdb1")
        // A tab is one column.
        XCTAssertEqual(diagnostics("global {\n\tusage-count maybe;\n}\n"), [
            "t.res:2:14: invalid value 'maybe' for 'usage-count'; expected one of: yes, no, ask"
        ])
    }

    func testQuotedHostNamesAndPaths() throws {
        let text = """
            resource "r" {
                on "a" { device "/dev/drbd1"; disk "/dev/disk/by-id/with space"; address 127.0.0.1:7789; meta-disk internal; }
            }

            """
        let resource = try resolve(text)
        XCTAssertEqual(resource.local.disk, "/dev/disk/by-id/with space")
        let directory = try makeDirectory(["r.res": resource.rendered()], testCase: self)
        XCTAssertEqual(try ConfigLoader(directory: directory).resolve(resource: "r", node: "a"), resource)
    }

    func testSkipSectionsAreIgnored() throws {
        let text = minimalResource(body: "  skip { net { not even { valid } } }") + "skip resource old { garbage; }\n"
        XCTAssertEqual(diagnostics(text), [])
        XCTAssertEqual(try resolve(text).sections["net"], [])
    }

    func testOnSectionWithSeveralNamesMatchesEachOfThem() throws {
        let text = """
            resource r {
                device /dev/drbd1;
                disk /dev/sdb1;
                meta-disk internal;
                on alice bob { address 10.2.2.100:7801; }
                on charlie { address 10.2.2.101:7801; }
            }

            """
        for node in ["alice", "bob"] {
            let resource = try resolve(text, node: node)
            XCTAssertEqual(resource.local.names, ["alice", "bob"])
            XCTAssertEqual(resource.peer?.names, ["charlie"])
        }
        XCTAssertEqual(try resolve(text, node: "charlie").peer?.names, ["alice", "bob"])
    }

    func testEmptyInputAndStraySemicolons() {
        XCTAssertEqual(diagnostics(""), [])
        XCTAssertEqual(diagnostics(";;\nglobal { usage-count no;; };\n"), [])
    }
}
