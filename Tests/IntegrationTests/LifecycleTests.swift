import Foundation
import XCTest

/// The administrator's verbs against a real daemon: exit codes, messages, roles, metadata.
final class LifecycleTests: XCTestCase {
    func testRolesStatusSecondUpAndDown() throws {
        let h = try DaemonHarness()
        defer { h.cleanUp() }
        XCTAssertEqual(try h.run(["create-md", h.resource]).status, 0)
        let again = try h.run(["create-md", h.resource])
        XCTAssertEqual(again.status, 11, "create-md must refuse to overwrite")
        XCTAssertTrue(again.stderr.contains("--force"), again.stderr)

        XCTAssertEqual(try h.run(["status", h.resource]).status, 20, "not up yet")
        let up = try h.run(["up", h.resource])
        XCTAssertEqual(up.status, 0, up.stderr + h.logTail())
        let second = try h.run(["up", h.resource])
        XCTAssertEqual(second.status, 21)
        XCTAssertTrue(second.stderr.contains("already up"), second.stderr)

        var status = try h.statusJSON()
        XCTAssertEqual(status.first?["name"] as? String, h.resource)
        XCTAssertEqual(status.first?["role"] as? String, "Secondary")
        let device = (status.first?["devices"] as? [[String: Any]])?.first
        XCTAssertEqual(device?["disk-state"] as? String, "Inconsistent")
        XCTAssertEqual(device?["size"] as? Int, 64 * 1024, "size in KiB")
        let connection = (status.first?["connections"] as? [[String: Any]])?.first
        XCTAssertEqual(connection?["connection-state"] as? String, "Connecting")
        XCTAssertEqual(connection?["repd-protocol"] as? String, "C")
        XCTAssertEqual(status.first?["nbd-uri"] as? String, h.uri)
        XCTAssertNotNil(status.first?["repd-message"] as? String, "running alone is said")

        // An Inconsistent disk is not promoted without --force.
        let refused = try h.run(["primary", h.resource])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("Inconsistent"), refused.stderr)

        // A Secondary export refuses writes with EPERM.
        XCTAssertEqual(try h.run(["primary", "--force", h.resource]).status, 0)
        XCTAssertEqual(try h.run(["secondary", h.resource]).status, 0)
        var client: NBDClient? = try NBDClient(uri: h.uri)
        XCTAssertThrowsError(try client!.pwrite([1, 2, 3, 4], offset: 0)) { error in
            XCTAssertEqual((error as? NBDClient.Failure)?.errno, EPERM)
        }
        // Consistent data that was UpToDate: promotion without --force works.
        XCTAssertEqual(try h.run(["primary", h.resource]).status, 0)
        try client!.pwrite(pattern(4096, seed: 5), offset: 4096)
        status = try h.statusJSON()
        XCTAssertEqual(status.first?["role"] as? String, "Primary")
        XCTAssertEqual(((status.first?["devices"] as? [[String: Any]])?.first)?["disk-state"] as? String, "UpToDate")

        // As DRBD refuses while the device is open: secondary and down are refused while an NBD
        // client has the export open, and the message names it.
        for verb in ["secondary", "down"] {
            let held = try h.run([verb, h.resource])
            XCTAssertEqual(held.status, 1, "\(verb) with a client holding the export")
            XCTAssertTrue(held.stderr.contains("1 NBD client has \(h.resource) open") && held.stderr.contains("pid \(getpid()), unix socket"), held.stderr)
        }
        client = nil
        try h.down()
        XCTAssertEqual(try h.run(["status", h.resource]).status, 20)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.socketPath), "export socket removed")
        // The write made while alone is remembered for the peer in the bitmap, across down.
        let dump = try h.run(["dump-md", h.resource, "--json"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let md = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(md?["out-of-sync-blocks"] as? Int, 1)
        XCTAssertTrue((md?["flags"] as? [String] ?? []).contains("consistent"))
    }

    func testCorruptMetadataIsRefusedClearly() throws {
        let h = try DaemonHarness()
        defer { h.cleanUp() }
        XCTAssertEqual(try h.run(["create-md", h.resource]).status, 0)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: h.metaPath))
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: Data([0xFF, 0xEE]))
        try handle.close()
        let dump = try h.run(["dump-md", h.resource])
        XCTAssertEqual(dump.status, 11)
        XCTAssertTrue(dump.stderr.contains("checksum"), dump.stderr)
        let up = try h.run(["up", h.resource])
        XCTAssertNotEqual(up.status, 0)
        XCTAssertTrue(up.stderr.contains("checksum"), up.stderr)
        // The daemon reports the error, then exits: give it a moment (bounded) to be gone.
        var alive: Int32? = nil
        for _ in 0..<50 {
            alive = h.daemonPID().flatMap { kill($0, 0) == 0 ? $0 : nil }
            if alive == nil { break }
            usleep(100_000)
        }
        XCTAssertNil(alive, "no daemon left running")
    }

    func testInternalMetadataShrinksTheExport() throws {
        let h = try DaemonHarness(metaDisk: "internal")
        defer { h.cleanUp() }
        try h.startPrimary()
        do {
            let c = try NBDClient(uri: h.uri)
            XCTAssertLessThan(c.size, 64 << 20)
            XCTAssertGreaterThan(c.size, 63 << 20)
            // Writing the last byte of the export must not touch the metadata after it.
            try c.pwrite([UInt8](repeating: 0xAB, count: 4096), offset: UInt64(c.size) - 4096)
        }
        try h.down()
        let dump = try h.run(["dump-md", h.resource, "--json"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
    }

    func testUnknownResourceAndBadConfigAreConfigErrors() throws {
        let h = try DaemonHarness()
        defer { h.cleanUp() }
        let missing = try h.run(["up", "nope"])
        XCTAssertEqual(missing.status, 10)
        XCTAssertTrue(missing.stderr.contains("nope"), missing.stderr)
        try "resource bad {\n  net { protocoll C; }\n}\n".write(
            to: h.configDir.appendingPathComponent("bad.res"), atomically: true, encoding: .utf8)
        let bad = try h.run(["dump-config", "bad"])
        XCTAssertEqual(bad.status, 10)
        XCTAssertTrue(bad.stderr.contains("bad.res:2:"), bad.stderr)
    }
}
