#if canImport(Glibc)
import Glibc
#endif
import CRepdSystem
import SystemPackage

/// Running the system's tools (`modprobe`, `pvs`, `nbdfuse`): found on PATH or in the sbin
/// directories, bounded in time, each in its own process group.
public enum Command {
    /// The absolute path of a program: on PATH, then in /usr/local/sbin, /usr/sbin, /sbin, /usr/bin, /bin.
    public static func find(_ name: String) -> String? {
        if name.hasPrefix("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = ProcessSupport.environment("PATH") ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    public struct Outcome: Sendable {
        public var result: HandlerRunner.Result
        /// Standard output and standard error together (at most 1 MiB).
        public var output: String
        public var succeeded: Bool { result == .exited(0) }
    }

    /// Runs `arguments[0]` (an absolute path) with the other words as its arguments, standard
    /// input from /dev/null, and collects its output. Kills its process group after `timeoutSeconds`.
    public static func run(_ arguments: [String], environment extra: [String: String] = [:], timeoutSeconds: Int) -> Outcome {
        var fds: [Int32] = [0, 0]
        guard crepd_pipe_cloexec(&fds) == 0 else {
            return Outcome(result: .couldNotStart("pipe: \(Errno(rawValue: Glibc.errno))"), output: "")
        }
        let readEnd = fds[0], writeEnd = fds[1]
        defer { close(readEnd) }
        let spawned = spawn(arguments, environment: extra, stdout: .descriptor(writeEnd))
        close(writeEnd)
        let pid: pid_t
        switch spawned {
        case .failed(let reason): return Outcome(result: .couldNotStart(reason), output: "")
        case .started(let p): pid = p
        }
        var collected: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        let deadline = ProcessSupport.monotonicNanoseconds() + UInt64(timeoutSeconds) * 1_000_000_000
        var timedOut = false
        while true {
            let now = ProcessSupport.monotonicNanoseconds()
            if now >= deadline { timedOut = true; break }
            var pfd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Int32(min(500, (deadline - now) / 1_000_000 + 1)))
            if r < 0 && Glibc.errno == EINTR { continue }
            if r == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            if collected.count < 1 << 20 { collected += buffer[0..<n] }
        }
        let output = String(decoding: collected, as: UTF8.self)
        if timedOut {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            return Outcome(result: .timedOut(seconds: timeoutSeconds), output: output)
        }
        return Outcome(result: wait(pid, until: deadline), output: output)
    }

    enum Spawned {
        case started(pid_t)
        case failed(String)
    }

    enum Output {
        case descriptor(Int32)
        case appendTo(String)
    }

    /// posix_spawn in a process group of its own, environment = ours + `extra`.
    static func spawn(_ arguments: [String], environment extra: [String: String], stdout: Output) -> Spawned {
        guard let executable = arguments.first else { return .failed("no program given") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        switch stdout {
        case .descriptor(let fd):
            posix_spawn_file_actions_adddup2(&actions, fd, 1)
        case .appendTo(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing of the daemon's (sockets, the ready pipe, the pid-file lock) leaks into the child.
        _ = crepd_spawn_close_from(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var env: [String: String] = [:]
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") { env[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            index += 1
        }
        for (key, value) in extra { env[key] = value }
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { return .failed("\(executable): \(Errno(rawValue: rc))") }
        return .started(pid)
    }

    static func wait(_ pid: pid_t, until deadline: UInt64) -> HandlerRunner.Result {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && Glibc.errno != EINTR { return .couldNotStart("waitpid: \(Errno(rawValue: Glibc.errno))") }
            if ProcessSupport.monotonicNanoseconds() >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return .timedOut(seconds: 0)
            }
            usleep(10_000)
        }
        let low = status & 0x7f
        return low == 0 ? .exited((status >> 8) & 0xff) : .signalled(low)
    }
}

/// A helper process the daemon starts and stops (nbdfuse), in its own process group, its output
/// appended to a log file.
public final class SupervisedProcess: @unchecked Sendable {
    public let pid: Int32
    public let name: String
    private var reaped = false

    private init(pid: Int32, name: String) {
        self.pid = pid
        self.name = name
    }

    public static func start(_ arguments: [String], environment: [String: String] = [:], logPath: String) throws(SystemError) -> SupervisedProcess {
        switch Command.spawn(arguments, environment: environment, stdout: .appendTo(logPath)) {
        case .started(let pid): return SupervisedProcess(pid: pid, name: arguments.first ?? "?")
        case .failed(let reason): throw SystemError("spawn", reason, errno: .noSuchFileOrDirectory)
        }
    }

    /// Whether it still runs (and reaps it once it has exited).
    public var isRunning: Bool {
        guard !reaped else { return false }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid || (r < 0 && Glibc.errno == ECHILD) { reaped = true; return false }
        return true
    }

    /// Waits up to `seconds` for it to exit by itself; true if it did.
    public func waitForExit(seconds: Double) -> Bool {
        let deadline = ProcessSupport.monotonicNanoseconds() + UInt64(seconds * 1e9)
        while isRunning {
            if ProcessSupport.monotonicNanoseconds() >= deadline { return false }
            usleep(20_000)
        }
        return true
    }

    /// SIGTERM to its process group, then SIGKILL if it has not exited after `graceSeconds`.
    public func stop(graceSeconds: Double = 5) {
        guard isRunning else { return }
        kill(-pid, SIGTERM)
        if waitForExit(seconds: graceSeconds) { return }
        kill(-pid, SIGKILL)
        _ = waitForExit(seconds: 5)
    }
}
