import RepdConfig
import XCTest

final class IncludeTests: XCTestCase {
    func testIncludeGlobRelativeToTheIncludingFile() throws {
        let directory = try makeDirectory([
            "main.res": minimalResource("main") + "include \"parts/*.conf\";\n",
            "parts/one.conf": minimalResource("one") + "include \"nested/deeper.conf\";\n",
            "parts/two.conf": minimalResource("two"),
            "parts/ignored.txt": "this is not included",
            "parts/nested/deeper.conf": minimalResource("deeper"),
        ], testCase: self)
        let loader = ConfigLoader(directory: directory)
        XCTAssertEqual(try loader.resourceNames(), ["deeper", "main", "one", "two"])
        let deeper = try loader.resolve(resource: "deeper", node: "b")
        XCTAssertEqual(deeper.file, "\(directory)/parts/nested/deeper.conf")
        XCTAssertEqual(deeper.local.names, ["b"])
    }

    func testGlobalCommonMayIncludeFiles() throws {
        let directory = try makeDirectory([
            "global_common.conf": "include \"common.d/net.conf\";\n",
            "common.d/net.conf": "common { net { protocol B; } }\n",
            "r.res": minimalResource("r"),
        ], testCase: self)
        XCTAssertEqual(try ConfigLoader(directory: directory).resolve(resource: "r", node: "a").net.protocol, .B)
    }

    func testIncludeOfAMissingFileIsAnErrorAtTheIncludeStatement() throws {
        let directory = try makeDirectory([
            "r.res": minimalResource("r") + "include \"missing.conf\";\n",
        ], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a") }, [
            "\(directory)/r.res:16:9: cannot include 'missing.conf': no such file (looked for \(directory)/missing.conf)"
        ])
    }

    func testEachFileIsReadOnceEvenWhenIncludedTwiceOrInACycle() throws {
        let directory = try makeDirectory([
            "a.res": minimalResource("a") + "include \"b.res\";\ninclude \"*.res\";\n",
            "b.res": minimalResource("b") + "include \"a.res\";\n",
        ], testCase: self)
        XCTAssertEqual(try ConfigLoader(directory: directory).resourceNames(), ["a", "b"])
    }

    func testErrorsInIncludedFilesCarryTheirOwnFileName() throws {
        let directory = try makeDirectory([
            "r.res": "include \"extra/*.conf\";\n" + minimalResource("r"),
            "extra/bad.conf": "common { net { protocl C; } }\n",
        ], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a") }, [
            "\(directory)/extra/bad.conf:1:16: unknown net option 'protocl'; did you mean 'protocol'?"
        ])
    }

    func testIncludeIsOnlyAllowedAtTheTopLevel() {
        XCTAssertEqual(diagnostics(minimalResource(body: "  net { include \"x.conf\"; }")), [
            "t.res:2:9: unknown net option 'include'"
        ])
    }
}
