#if canImport(Glibc)
import Glibc
#endif
import CRepdSystem
import SystemPackage

/// Starting the daemon in the background and learning whether it came up.
///
/// The parent creates a pipe, spawns the daemon in a new session with the pipe's write end
/// as descriptor 3 and its output going to the log file, and reads the pipe: the daemon
/// writes one line, `READY` or `ERROR <reason>`, then closes it. If the daemon dies first,
/// the read sees end-of-file. Before that line it may write `WARNING <text>` lines, which the
/// parent shows the operator.
public enum DaemonSpawner {
    public static let readyDescriptor: Int32 = 3

    public enum Outcome: Sendable, Equatable {
        case ready(pid: Int32, warnings: [String])
        case failed(String, warnings: [String])
    }

    public static func spawn(executable: String, arguments: [String], logPath: String, timeoutSeconds: Int) throws(SystemError) -> Outcome {
        var fds: [Int32] = [0, 0]
        _ = try retryingEINTR("pipe") { crepd_pipe_cloexec(&fds) }
        let readEnd = fds[0], writeEnd = fds[1]
        defer { close(readEnd) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, readyDescriptor)
        // Nothing else of the caller's: a descriptor the daemon inherited (a pipe of the shell
        // or cluster agent that ran `repd up`) would stay open as long as the daemon runs.
        _ = crepd_spawn_close_from(&actions, readyDescriptor + 1)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc): the daemon leaves our session and terminal.
        posix_spawnattr_setflags(&attributes, Int16(0x80))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        close(writeEnd)
        guard rc == 0 else { throw SystemError("posix_spawn", executable, errno: Errno(rawValue: rc)) }

        var collected: [UInt8] = []
        let deadline = ProcessSupport.monotonicNanoseconds() + UInt64(timeoutSeconds) * 1_000_000_000
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let now = ProcessSupport.monotonicNanoseconds()
            if now >= deadline {
                return .failed("the daemon (pid \(pid)) did not report ready within \(timeoutSeconds) s; see \(logPath)", warnings: [])
            }
            var pfd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let waitMs = Int32(min(1000, (deadline - now) / 1_000_000))
            let r = poll(&pfd, 1, waitMs)
            if r < 0 && Glibc.errno == EINTR { continue }
            if r == 0 { continue }
            let n = read(readEnd, &buf, buf.count)
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            collected += buf[0..<n]
        }
        // Reap the child if it already exited, so it is no zombie.
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG) == pid
        let lines = String(decoding: collected, as: UTF8.self).split(separator: "\n").map { String($0).trimmingWhitespace() }
        let warnings = lines.filter { $0.hasPrefix("WARNING ") }.map { String($0.dropFirst(8)) }
        let line = lines.last { !$0.hasPrefix("WARNING ") } ?? ""
        if line == "READY" && !reaped { return .ready(pid: pid, warnings: warnings) }
        if line.hasPrefix("ERROR ") { return .failed(String(line.dropFirst(6)), warnings: warnings) }
        return .failed("the daemon exited before it was ready; see \(logPath)", warnings: warnings)
    }

    /// Called by the daemon before `report`: a warning for the operator (one line).
    public static func warn(_ text: String, on fd: Int32 = readyDescriptor) {
        let bytes = Array(("WARNING " + text.split(separator: "\n").joined(separator: " ") + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Called by the daemon: reports readiness (or the reason it failed) to the parent.
    public static func report(_ line: String, on fd: Int32 = readyDescriptor) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// True when descriptor 3 is the ready pipe given by `spawn`.
    public static func hasReadyDescriptor(_ fd: Int32 = readyDescriptor) -> Bool {
        fcntl(fd, F_GETFD) != -1
    }
}
