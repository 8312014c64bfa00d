import ControlProtocol
import RepdEngine
import RepdNet
import RepdSystem

/// The control socket: status is read from the engine's state; every other command is an engine
/// event, answered by its `reply` action.
extension Resource {
    func handle(_ request: ControlRequest) async -> ControlReply {
        let command: OperatorCommand
        switch request.command {
        case .status:
            return ControlReply(ok: true, status: status())
        case .down:
            if let refusal = attachment.refuseDown(force: request.force) ?? refuseWhileClientsOpen("go down", force: request.force) {
                return ControlReply(ok: false, message: "\(config.name): \(refusal)", status: status())
            }
            requestStop()
            return ControlReply(ok: true, message: "\(config.name): going down")
        case .primary: command = .primary(force: request.force)
        case .secondary:
            // The device goes read-only (and is flushed) first; refused while something holds it.
            if let refusal = refuseWhileClientsOpen("become Secondary", force: request.force) ?? attachment.prepareDemotion(force: request.force) {
                return ControlReply(ok: false, message: "\(config.name): \(refusal)", status: status())
            }
            command = .secondary
        case .pauseSync: command = .pauseSync
        case .resumeSync: command = .resumeSync
        case .invalidate: command = .invalidate(full: request.option ?? true)
        case .invalidateRemote: command = .invalidateRemote(full: request.option ?? true)
        case .verify: command = .verify
        case .newCurrentUUID: command = .newCurrentUUID(clearBitmap: request.option ?? false)
        case .connect: command = .connect(discardMyData: request.option ?? false, dryRun: request.dryRun ?? false)
        case .disconnect: command = .disconnect
        case .detach: command = .detach
        case .resumeIO: command = .resumeIO
        case .suspendIO: command = .suspendIO
        case .outdate: command = .outdate(byPeer: false)
        case .resize:
            return await resize(assumeClean: request.option ?? false)
        case .adjust:
            return await adjust(configDirectory: request.configDirectory ?? "", dryRun: request.dryRun ?? false)
        case .attach:
            let answer = await attachDisk()
            return ControlReply(ok: answer.ok, message: answer.message, status: status())
        }
        let answer = await self.command(command)
        if case .secondary = command, !answer.ok {
            // Refused or failed: the device goes back to what the role is.
            attachment.follow(primary: state.withLockedValue { $0.engine.state.role == .primary })
        }
        return ControlReply(ok: answer.ok, message: answer.message, status: status())
    }
}

extension Resource {
    /// `secondary` and `down` are refused while NBD clients (besides the resource's own block
    /// device) have the export open, as DRBD refuses while the device is open; `--force` overrides.
    func refuseWhileClientsOpen(_ what: String, force: Bool) -> String? {
        guard state.withLockedValue({ $0.engine.state.role == .primary }) || what == "go down" else { return nil }
        let clients = nbd?.openClients(excludingPIDs: attachment.helperPIDs) ?? []
        guard !clients.isEmpty else { return nil }
        let names = clients.map(Self.describe).joined(separator: ", ")
        guard force else {
            return "refusing to \(what): \(clients.count) NBD client\(clients.count == 1 ? "" : "s") \(clients.count == 1 ? "has" : "have") \(config.name) open "
                + "(\(names)); close \(clients.count == 1 ? "it" : "them") first, or use --force"
        }
        logger.warning("\(what) --force with NBD clients open: \(names)")
        return nil
    }

    static func describe(_ client: NBDClientInfo) -> String {
        if let pid = client.pid {
            let name = SysFS.read("/proc/\(pid)/comm", limit: 64).flatMap { $0.isEmpty ? nil : $0 } ?? "process"
            return "\(name) (pid \(pid), unix socket)"
        }
        return client.address.map { "\($0) (TCP)" } ?? "a client"
    }
}
