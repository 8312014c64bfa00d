import Foundation
import XCTest

/// Starts real repd daemons for a test: a temporary config dir, run dir and backing files,
/// and `repd` invoked as an administrator would. Everything is removed at the end, and a
/// daemon still up is stopped (and killed if it does not stop).
final class DaemonHarness {
    let root: URL
    let configDir: URL
    let runDir: URL
    let resource: String
    let node = "alpha"
    let repd: String
    private(set) var isUp = false

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func repdBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["REPD_BIN"] { return path }
        for config in ["release", "debug"] {
            let path = packageRoot.appendingPathComponent(".build/\(config)/repd").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("repd binary not built (swift build first, or set REPD_BIN)")
    }

    /// - Parameters:
    ///   - size: the backing file's size.
    ///   - metaDisk: "internal" or "external" (a separate file).
    init(resource: String = "t0", size: UInt64 = 64 << 20, metaDisk: String = "external", extraNet: String = "") throws {
        repd = try Self.repdBinary()
        self.resource = resource
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("repd-it-\(UUID().uuidString.prefix(8))")
        configDir = root.appendingPathComponent("conf")
        runDir = root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: configDir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: runDir, withIntermediateDirectories: true)
        for name in ["alpha", "beta"] {
            let path = root.appendingPathComponent("\(name).img").path
            FileManager.default.createFile(atPath: path, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: size)
            try handle.close()
        }
        let port = 20000 + Int(getpid() % 20000)
        let md: (String) -> String = { name in
            metaDisk == "internal" ? "internal" : self.root.appendingPathComponent("\(name).md").path
        }
        let text = """
            resource \(resource) {
              net { protocol C; \(extraNet) }
              on alpha {
                device none;
                disk \(root.appendingPathComponent("alpha.img").path);
                address 127.0.0.1:\(port);
                meta-disk \(md("alpha"));
              }
              on beta {
                device none;
                disk \(root.appendingPathComponent("beta.img").path);
                address 127.0.0.2:\(port);
                meta-disk \(md("beta"));
              }
            }

            """
        try text.write(to: configDir.appendingPathComponent("\(resource).res"), atomically: true, encoding: .utf8)
    }

    var dataPath: String { root.appendingPathComponent("alpha.img").path }
    var metaPath: String { root.appendingPathComponent("alpha.md").path }
    var socketPath: String { runDir.appendingPathComponent("\(resource).sock").path }
    var uri: String { "nbd+unix:///\(resource)?socket=\(socketPath)" }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `repd ARGS --config-dir --node --run-dir`, bounded in time.
    @discardableResult
    func run(_ arguments: [String], timeout: TimeInterval = 60) throws -> Result {
        // posix_spawn and waitpid directly: the test controls reaping and the time limit.
        // Output goes to files, so a chatty child can never block on a full pipe.
        let outPath = root.appendingPathComponent("cmd-\(UUID().uuidString).out").path
        let errPath = root.appendingPathComponent("cmd-\(UUID().uuidString).err").path
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        let argv = [repd] + arguments + ["--config-dir", configDir.path, "--node", node, "--run-dir", runDir.path]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, repd, &actions, nil, cArgs, environ)
        guard rc == 0 else { throw NBDClient.Failure(message: "posix_spawn \(repd)", errno: rc) }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if Date() >= deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                XCTFail("repd \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
                break
            }
            usleep(5_000)
        }
        let exitStatus: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        let outData = FileManager.default.contents(atPath: outPath) ?? Data()
        let errData = FileManager.default.contents(atPath: errPath) ?? Data()
        return Result(status: exitStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// create-md, up, primary --force: a writable single-node export.
    func startPrimary() throws {
        let create = try run(["create-md", resource])
        XCTAssertEqual(create.status, 0, create.stderr)
        let up = try run(["up", resource])
        XCTAssertEqual(up.status, 0, up.stderr + logTail())
        isUp = up.status == 0
        let primary = try run(["primary", "--force", resource])
        XCTAssertEqual(primary.status, 0, primary.stderr)
    }

    func statusJSON() throws -> [[String: Any]] {
        let r = try run(["status", resource, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    func daemonPID() -> Int32? {
        guard let text = try? String(contentsOfFile: runDir.appendingPathComponent("\(resource).pid").path, encoding: .utf8)
        else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func logTail() -> String {
        let text = (try? String(contentsOfFile: runDir.appendingPathComponent("\(resource).log").path, encoding: .utf8)) ?? ""
        return "\n--- log ---\n" + text.split(separator: "\n").suffix(30).joined(separator: "\n")
    }

    func down() throws {
        let r = try run(["down", resource])
        XCTAssertEqual(r.status, 0, r.stderr + logTail())
        isUp = false
    }

    /// Stops anything left and removes the files. Safe to call twice.
    func cleanUp() {
        if let pid = daemonPID(), kill(pid, 0) == 0 {
            _ = try? run(["down", resource], timeout: 30)
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        isUp = false
        try? FileManager.default.removeItem(at: root)
    }

    deinit { cleanUp() }
}
