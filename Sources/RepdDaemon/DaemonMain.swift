import Logging
import RepdConfig
import RepdStorage
import RepdSystem

/// The daemon's life: take the pid lock, attach, serve, report readiness, run until stopped.
public enum DaemonMain {
    public enum Outcome: Sendable {
        case stopped
        case alreadyRunning(String)
        case failed(String)
    }

    public static func run(config: ResolvedResource, node: String, runDirectory: String, readyDescriptor: Int32?) async -> Outcome {
        ProcessSupport.ignoreSIGPIPE()
        // The helpers the daemon starts (nbdfuse, handlers) must not hold the ready pipe open.
        if let fd = readyDescriptor { ProcessSupport.setCloseOnExec(fd) }
        ProcessSupport.limitMallocArenas()
        let logger = Logger(label: config.name) { _ in RepdLogHandler(resource: config.name, node: node) }
        func fail(_ message: String) -> Outcome {
            logger.error("\(message)")
            if let fd = readyDescriptor { DaemonSpawner.report("ERROR \(message)", on: fd) }
            return .failed(message)
        }
        let run = RunDirectory(path: runDirectory, resource: config.name)
        let pidFile: PIDFile
        do {
            switch try PIDFile.acquire(run.pidFile) {
            case .acquired(let file):
                pidFile = file
            case .heldBy(let pid):
                let message = "\(config.name) is already up on node \(node) (pid \(pid.map(String.init) ?? "?"), run dir \(runDirectory))"
                if let fd = readyDescriptor { DaemonSpawner.report("ERROR \(message)", on: fd) }
                return .alreadyRunning(message)
            }
        } catch {
            return fail("cannot take the pid file: \(error)")
        }
        defer { pidFile.release() }
        logger.info("starting \(config.name) on node \(node) (pid \(ProcessSupport.currentPID))")
        let resource: Resource
        do {
            resource = try Resource(config: config, node: node, runDirectory: runDirectory, logger: logger)
        } catch {
            return fail("cannot attach: \(error)")
        }
        do {
            try await resource.start()
        } catch {
            await resource.shutdown()
            if let fd = readyDescriptor { resource.warnings.forEach { DaemonSpawner.warn($0, on: fd) } }
            return fail("cannot start: \(error)")
        }
        if let fd = readyDescriptor {
            for warning in resource.warnings { DaemonSpawner.warn(warning, on: fd) }
            DaemonSpawner.report("READY", on: fd)
        }
        await resource.runUntilStopped()
        return .stopped
    }
}

/// Log lines as `2026-11-22T10:00:00Z r0 INFO: message`, to standard error (the log file when
/// the daemon runs in the background).
struct RepdLogHandler: LogHandler {
    let resource: String
    let node: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        ProcessSupport.writeStandardError("\(ProcessSupport.timestamp()) \(resource)@\(node) \(level.rawValue.uppercased()): \(message)\n")
    }
}
