#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Runs an operator's handler command (`handlers { split-brain "..."; }`): `/bin/sh -c COMMAND`
/// with extra environment variables, its output appended to a log file, bounded in time. Blocks
/// the calling thread: call it from a thread of its own, never from I/O paths.
public enum HandlerRunner {
    public enum Result: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)
        case timedOut(seconds: Int)
        case couldNotStart(String)

        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signalled(let sig): "killed by signal \(sig)"
            case .timedOut(let seconds): "still running after \(seconds) s: killed"
            case .couldNotStart(let reason): "could not start: \(reason)"
            }
        }
    }

    public static func run(command: String, environment: [String: String], logPath: String, timeoutSeconds: Int) -> Result {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so that a timeout kills what it started too.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        var env: [String: String] = [:]
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") { env[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            index += 1
        }
        for (key, value) in environment { env[key] = value }
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        let words: [String] = ["/bin/sh", "-c", command]
        let argv = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        guard rc == 0 else { return .couldNotStart("\(Errno(rawValue: rc))") }
        let deadline = ProcessSupport.monotonicNanoseconds() + UInt64(timeoutSeconds) * 1_000_000_000
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return .couldNotStart("waitpid: \(Errno(rawValue: errno))") }
            if ProcessSupport.monotonicNanoseconds() >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return .timedOut(seconds: timeoutSeconds)
            }
            usleep(20_000)
        }
        let low = status & 0x7f
        return low == 0 ? .exited((status >> 8) & 0xff) : .signalled(low)
    }
}
