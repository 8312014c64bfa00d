import ControlProtocol
import RepdEngine

/// The control socket: status is read from the engine's state; every other command is an engine
/// event, answered by its `reply` action.
extension Resource {
    func handle(_ request: ControlRequest) async -> ControlReply {
        let command: OperatorCommand
        switch request.command {
        case .status:
            return ControlReply(ok: true, status: status())
        case .down:
            if let refusal = attachment.refuseDown(force: request.force) {
                return ControlReply(ok: false, message: "\(config.name): \(refusal)", status: status())
            }
            requestStop()
            return ControlReply(ok: true, message: "\(config.name): going down")
        case .primary: command = .primary(force: request.force)
        case .secondary:
            // The device goes read-only (and is flushed) first; refused while something holds it.
            if let refusal = attachment.prepareDemotion(force: request.force) {
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
