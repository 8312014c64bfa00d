import RepdStorage
import Foundation
import RepdConfig
import XCTest

/// The package root: three levels up from this file (Tests/RepdConfigTests/TestSupport.swift).
let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The example resource files, which double as fixtures.
let fixturesDirectory: String = packageRoot.appendingPathComponent("resources.d").path

/// The diagnostics of `text` as `file:line:column: message` strings.
func diagnostics(_ text: String, file: String = "t.res") -> [String] {
    ConfigLoader.diagnostics(parsing: text, file: file).map(\.description)
}

/// A fresh directory holding `files` (relative path to content); removed when the test ends.
func makeDirectory(_ files: [String: String], testCase: XCTestCase) throws -> String {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("repd-config-\(UUID().uuidString)")
    for (relativePath, text) in files {
        let url = directory.appendingPathComponent(relativePath)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
    return directory.path
}

/// Runs `body`, which must throw a `ConfigError`, and returns its diagnostics as strings.
func configErrors(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> [String] {
    do {
        try body()
        XCTFail("expected a ConfigError", file: file, line: line)
    } catch let error as ConfigError {
        return error.diagnostics.map(\.description)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
    return []
}

/// Two hosts on loopback with everything an `on` section needs; `body` goes into the resource.
func minimalResource(_ name: String = "r", body: String = "") -> String {
    """
    resource \(name) {
    \(body)
        on a {
            device /dev/drbd1;
            disk /dev/sdb1;
            address 127.0.0.1:7789;
            meta-disk internal;
        }
        on b {
            device /dev/drbd1;
            disk /dev/sdb1;
            address 127.0.0.2:7789;
            meta-disk internal;
        }
    }

    """
}
