import ControlProtocol
import Logging
import NBDProtocol
import NIOConcurrencyHelpers
import RepdConfig
import RepdNet
import RepdSystem

/// The kernel's nbd driver path of the attachment (generic netlink): connect the export's sockets
/// to /dev/nbdN, or take over the one a crashed daemon left in use.
extension DeviceAttachment {
    func kernelDriver() -> NBDKernelDriver? {
        if !NBDKernelDriver.isLoaded, let modprobe = Command.find("modprobe") {
            let outcome = Command.run([modprobe, "nbd"], timeoutSeconds: 30)
            if !outcome.succeeded {
                logger.info("modprobe nbd: \(outcome.result): \(outcome.output.split(separator: "\n").last.map(String.init) ?? "")")
            }
        }
        do {
            return try NBDKernelDriver()
        } catch {
            logger.info("no kernel nbd driver (\(error)): using nbdfuse+loop")
            return nil
        }
    }

    func describe(_ a: Attached) -> String {
        let path = host.device == a.target ? a.target : "\(host.device) -> \(a.target)"
        return "device \(path) (\(a.method.rawValue))\(a.readOnly ? ", read-only while Secondary" : ""); links \(a.links.joined(separator: ", "))"
    }

    /// The nbd index the configuration implies: N of a `/dev/nbdN` device path, else the minor.
    var preferredNBDIndex: Int? {
        let prefix = "/dev/nbd"
        if host.device.hasPrefix(prefix), let n = Int(host.device.dropFirst(prefix.count)) { return n }
        return host.minor
    }

    func attachKernelNBD(driver: NBDKernelDriver, server: NBDServer, export: NBDExportInfo, writable: Bool, reviving: Int?) async throws -> Attached {
        let devices = (try? driver.devices()) ?? []
        var index = preferredNBDIndex
        var revive = reviving
        if let stale = revive, BlockDevices.size("/dev/nbd\(stale)") != export.size {
            logger.warning("/dev/nbd\(stale), left in use by the previous daemon, has another size than the export: not reconnecting it")
            revive = nil
        }
        if let wanted = index, devices.contains(where: { $0.index == wanted && $0.connected }) {
            logger.info("/dev/nbd\(wanted) is in use: taking a free nbd device")
            index = nil
        }
        let connections = max(1, min(4, ProcessSupport.processorCount))
        let session = NBDSession(export: export, structuredReplies: false, metaContexts: [:])
        var kernelEnds: [Int32] = []
        var failure: (any Error)?
        for n in 0..<connections where failure == nil {
            do {
                let (kernelEnd, ourEnd) = try ProcessSupport.socketPair()
                kernelEnds.append(kernelEnd)
                do {
                    try await server.serve(connectedSocket: ourEnd, session: session, name: "kernel nbd connection \(n)")
                } catch {
                    ProcessSupport.closeDescriptor(ourEnd)
                    failure = error
                }
            } catch {
                failure = error
            }
        }
        let request = NBDKernelDriver.ConnectRequest(
            index: index, sockets: kernelEnds, sizeBytes: export.size, blockSizeBytes: UInt64(Self.blockSize),
            serverFlags: UInt64(export.flags.rawValue), deadConnectionTimeoutSeconds: Self.deadConnectionTimeoutSeconds,
            backend: backendIdentifier)
        var outcome: Result<Int, any Error>
        var deferred: [Int32]? = nil
        if failure != nil {
            outcome = .failure(failure!)
        } else if let stale = revive, !writable {
            let when = "within \(Self.deadConnectionTimeoutSeconds) s, or the requests the kernel queued fail"
            logger.warning("/dev/nbd\(stale), which the previous daemon left in use, is reconnected when this node becomes Primary (\(when))")
            deferred = kernelEnds
            outcome = .success(stale)
        } else if let stale = revive {
            do {
                try driver.reconnect(index: stale, sockets: kernelEnds, backend: backendIdentifier)
                logger.warning("reconnected /dev/nbd\(stale), which the previous daemon left in use: its users carry on")
                outcome = .success(stale)
            } catch {
                logger.warning("cannot reconnect /dev/nbd\(stale) (\(error)): attaching another nbd device")
                var other = request
                other.index = nil
                outcome = connect(driver, other)
            }
        } else {
            outcome = connect(driver, request)
        }
        // The kernel holds its own reference to each socket it took; ours are closed either way.
        if deferred == nil { kernelEnds.forEach { ProcessSupport.closeDescriptor($0) } }
        let connected: Int
        switch outcome {
        case .success(let n): connected = n
        case .failure(let error): throw error
        }
        let target = "/dev/nbd\(connected)"
        var result = Attached(method: .kernelNBD, target: target, kernelName: "nbd\(connected)", links: [], nbdIndex: connected, readOnly: false,
                              pendingReconnect: deferred)
        do {
            try waitForDevice(target, size: export.size)
            try finish(&result, writable: writable)
        } catch {
            // A device its users still hold is theirs: never disconnected here.
            if connected != revive { try? driver.disconnect(index: connected) }
            deferred?.forEach { ProcessSupport.closeDescriptor($0) }
            removeLinks(result)
            throw error
        }
        return result
    }

    /// NBD_CMD_CONNECT, at the preferred index, or any free one if that one is taken.
    func connect(_ driver: NBDKernelDriver, _ request: NBDKernelDriver.ConnectRequest) -> Result<Int, any Error> {
        do {
            return .success(try driver.connect(request))
        } catch {
            guard error.errno == .resourceBusy, let index = request.index else { return .failure(error) }
            logger.info("/dev/nbd\(index) is busy: taking a free nbd device")
            var anyIndex = request
            anyIndex.index = nil
            do { return .success(try driver.connect(anyIndex)) } catch { return .failure(error) }
        }
    }

}
