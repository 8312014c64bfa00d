import ControlProtocol
import Logging
import NBDProtocol
import NIOConcurrencyHelpers
import RepdConfig
import RepdNet
import RepdSystem

/// For the CLI: `repd down` of a resource whose daemon died undoes what it left attached.
public enum DeviceLeftovers {
    /// Removes stale links, disconnects a stale nbd device nobody uses, stops a stale nbdfuse and
    /// unmounts its FUSE mount. Returns a sentence per thing done (or left because it is in use).
    public static func undo(runDirectory: String, resource: String) -> [String] {
        undoLeftovers(run: RunDirectory(path: runDirectory, resource: resource), resource: resource, logger: nil)
    }

    /// The recorded state file as `key value` pairs.
    static func leftoverState(_ run: RunDirectory) -> [(String, String)]? {
        guard let text = SysFS.read(run.deviceState) else { return nil }
        var fields: [(String, String)] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { fields.append((String(parts[0]), String(parts[1]))) }
        }
        return fields
    }

    /// The index of the nbd device a dead daemon of this resource left connected and in use.
    static func staleKernelNBDInUse(run: RunDirectory, resource: String) -> Int? {
        guard let fields = leftoverState(run), fields.contains(where: { $0 == ("method", "kernel-nbd") }),
              let name = fields.first(where: { $0.0 == "kernel-name" })?.1, name.hasPrefix("nbd"),
              let index = Int(name.dropFirst(3)), NBDKernelDriver.backend(index: index) == "repd:\(resource)",
              !BlockDevices.users(of: name).isEmpty
        else { return nil }
        return index
    }

    static func undoLeftovers(run: RunDirectory, resource: String, logger: Logger?) -> [String] {
        var done: [String] = []
        if let fields = leftoverState(run) {
            let value = { (key: String) in fields.first { $0.0 == key }?.1 }
            let kernelName = value("kernel-name") ?? ""
            for (key, link) in fields where key == "link" {
                if DeviceLink.remove(link, ifPointingTo: DeviceLink.relativeTarget(from: link, toDevice: kernelName)) {
                    done.append("removed the stale link \(link)")
                }
            }
            ProcessSupport.removeDirectory("/dev/repd/by-res")
            ProcessSupport.removeDirectory("/dev/repd")
            let busy = kernelName.isEmpty ? [] : BlockDevices.users(of: kernelName)
            /// What repd changed on a device it releases: the read-only flag, the discard limit.
            let restore = {
                try? BlockDevices.setReadOnly("/dev/\(kernelName)", false)
                if let limit = value("discard-max-bytes").flatMap({ UInt64($0) }) { BlockDevices.setDiscardLimit(of: kernelName, bytes: limit) }
            }
            let inUse = "is still in use and stays until released: \(busy.map(\.description).joined(separator: "; "))"
            if value("method") == "kernel-nbd", kernelName.hasPrefix("nbd"), let index = Int(kernelName.dropFirst(3)),
               NBDKernelDriver.backend(index: index) == "repd:\(resource)" {
                if busy.isEmpty {
                    restore()
                    if (try? NBDKernelDriver().disconnect(index: index)) != nil { done.append("disconnected the stale /dev/\(kernelName)") }
                } else {
                    done.append("/dev/\(kernelName) \(inUse)")
                }
            }
            if value("method") == "nbdfuse-loop", kernelName.hasPrefix("loop"), let index = Int(kernelName.dropFirst(4)),
               LoopDevice.backingFile(ofLoop: index).map({ $0.hasPrefix(run.fuseFile) }) == true {
                if busy.isEmpty {
                    restore()
                    if (try? LoopDevice.clear(index: index)) != nil { done.append("detached the stale /dev/\(kernelName)") }
                } else {
                    done.append("/dev/\(kernelName) \(inUse)")
                }
            }
            if let pidText = value("nbdfuse-pid"), let pid = Int32(pidText), ProcessSupport.isAlive(pid),
               (SysFS.read("/proc/\(pid)/cmdline") ?? "").contains(run.fuseFile) {
                ProcessSupport.terminate(pid)
                done.append("stopped the stale nbdfuse (pid \(pid))")
            }
            ProcessSupport.removeFile(run.deviceState)
        }
        if MountEntry.current().contains(where: { $0.mountPoint == run.fuseMount }) {
            _ = ProcessSupport.unmountLazily(run.fuseMount)
            done.append("unmounted the stale FUSE mount \(run.fuseMount)")
        }
        for line in done { logger?.warning("after an unclean stop: \(line)") }
        return done
    }
}

