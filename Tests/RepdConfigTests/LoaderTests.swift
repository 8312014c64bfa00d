import RepdConfig
import XCTest

final class LoaderTests: XCTestCase {
    func testResourceNotFoundListsTheResourcesThatExist() throws {
        let directory = try makeDirectory(["r.res": minimalResource("r0"), "s.res": minimalResource("web")], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resolve(resource: "r1", node: "a") }, [
            "resource 'r1' not found in '\(directory)'; defined resources: r0, web"
        ])
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resolve(resource: "webb", node: "a") }, [
            "resource 'webb' not found in '\(directory)'; defined resources: r0, web; did you mean 'web'?"
        ])
        let empty = try makeDirectory([:], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: empty).resolve(resource: "r1", node: "a") }, [
            "resource 'r1' not found: no resources are defined in '\(empty)'"
        ])
        XCTAssertEqual(try ConfigLoader(directory: empty).resourceNames(), [])
    }

    func testNodeWithoutAnOnSectionListsTheHostsAndHintsAtNode() throws {
        let directory = try makeDirectory(["r.res": minimalResource("r")], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resolve(resource: "r", node: "c") }, [
            "\(directory)/r.res:1:10: resource 'r' has no 'on' section for node 'c'; its hosts are 'a' and 'b' (pass one of them with --node)"
        ])
    }

    func testABrokenUnrelatedFileDoesNotStopAnotherResource() throws {
        let directory = try makeDirectory([
            "good.res": minimalResource("good"),
            "broken.res": "resource broken {\n  net { protocol X; }\n",
        ], testCase: self)
        let loader = ConfigLoader(directory: directory)
        XCTAssertEqual(try loader.resolve(resource: "good", node: "a").name, "good")
        // Reading everything finds the broken file.
        XCTAssertEqual(configErrors { _ = try loader.resourceNames() }, [
            "\(directory)/broken.res:1:1: missing '}' to close 'resource broken'",
            "\(directory)/broken.res:1:10: resource 'broken' has no 'on' section; add one 'on HOST { ... }' per node",
            "\(directory)/broken.res:2:18: invalid value 'X' for 'protocol'; expected one of: A, B, C",
        ])
        // And the broken resource itself cannot be resolved.
        XCTAssertEqual(configErrors { _ = try loader.resolve(resource: "broken", node: "a") }.count, 3)
    }

    func testTheResourcesOwnFileIsReadFirst() throws {
        // `r.res` defines r; the unrelated, broken `a.res` sorts first but is never read.
        let directory = try makeDirectory(["a.res": "garbage {", "r.res": minimalResource("r")], testCase: self)
        XCTAssertEqual(try ConfigLoader(directory: directory).resolve(resource: "r", node: "b").local.names, ["b"])
    }

    func testAResourceInAnotherFileIsFound() throws {
        let directory = try makeDirectory(["many.res": minimalResource("x") + minimalResource("y")], testCase: self)
        let y = try ConfigLoader(directory: directory).resolve(resource: "y", node: "a")
        XCTAssertEqual(y.file, "\(directory)/many.res")
        XCTAssertEqual(y.location.line, 16)
    }

    func testErrorsInGlobalCommonAlwaysCount() throws {
        let directory = try makeDirectory(
            ["global_common.conf": "global { usage-count perhaps; }\n", "r.res": minimalResource("r")], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a") }, [
            "\(directory)/global_common.conf:1:22: invalid value 'perhaps' for 'usage-count'; expected one of: yes, no, ask"
        ])
    }

    func testDuplicateResourceAcrossFilesReportsBothLocations() throws {
        let directory = try makeDirectory(["a.res": minimalResource("r"), "b.res": minimalResource("r")], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resourceNames() }, [
            "\(directory)/b.res:1:10: duplicate resource 'r' (first defined at \(directory)/a.res:1:10)"
        ])
    }

    func testErrorsAreTypedConfigErrors() {
        let loader = ConfigLoader(directory: "/nonexistent/repd")
        do {
            _ = try loader.resolve(resource: "r", node: "a")
            XCTFail("expected an error")
        } catch {
            let typed: ConfigError = error  // typed throws: no cast needed
            XCTAssertEqual(typed.diagnostics.count, 1)
            XCTAssertNil(typed.diagnostics[0].location)
        }
    }

    func testMissingDirectory() {
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: "/nonexistent/repd").resourceNames() }, [
            "cannot read configuration directory '/nonexistent/repd': No such file or directory"
        ])
    }

    func testTrailingSlashInTheDirectoryIsIgnored() throws {
        let directory = try makeDirectory(["r.res": minimalResource("r")], testCase: self)
        let resource = try ConfigLoader(directory: directory + "/").resolve(resource: "r", node: "a")
        XCTAssertEqual(resource.file, "\(directory)/r.res")
    }

    func testEqualityIgnoresWhereThingsWereWritten() throws {
        let plain = try makeDirectory(["r.res": minimalResource("r")], testCase: self)
        let shifted = try makeDirectory(["r.res": "# a comment\n\n" + minimalResource("r")], testCase: self)
        let a = try ConfigLoader(directory: plain).resolve(resource: "r", node: "a")
        let b = try ConfigLoader(directory: shifted).resolve(resource: "r", node: "a")
        XCTAssertNotEqual(a.location, b.location)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.hashValue, b.hashValue)
        XCTAssertEqual(Set([a.local, b.local]).count, 1)
    }
}
