import ControlProtocol
import RepdCore
import RepdSystem

extension Resource {
    /// Promotes this node. Refusals carry the operator-facing reason.
    func promote(force: Bool) throws {
        try withState { (m: inout Mutable, effects: inout Effects) throws -> Void in
            var state = m.state
            let changes = try state.apply(.promote(force: force))
            var sb = m.superblock
            for effect in changes {
                switch effect {
                case .forcedUpToDate:
                    sb.flags.formUnion([.consistent, .wasUpToDate])
                    logger.warning("forced to UpToDate: this node's data is now the reference copy")
                case .newCurrentGeneration:
                    // DRBD's rule: the old current (with the role bit it had) becomes the bitmap
                    // UUID when none is set; the new current marks this data.
                    sb.generation.startNewCurrent(ProcessSupport.randomUInt64(), primary: true)
                    logger.info("new current generation \(hex(sb.generation.current))")
                case .writeMetadata:
                    break
                }
            }
            sb.flags.insert(.primaryIndicator)
            if state.disk == .upToDate { sb.flags.formUnion([.consistent, .wasUpToDate]) }
            sb.generation.recordRole(primary: true)
            sb.updateCounter += 1
            try metadata.writeSuperblock(sb)
            m.superblock = sb
            m.state = state
            stateChanged(&m, &effects)
        }
        logger.info("role Primary")
        attachment.follow(primary: true)
    }

    func demote() throws {
        try withState { (m: inout Mutable, effects: inout Effects) throws -> Void in
            var state = m.state
            let changes = try state.apply(.demote)
            guard !changes.isEmpty else { return }
            var sb = m.superblock
            sb.flags.remove(.primaryIndicator)
            sb.generation.recordRole(primary: false)
            sb.updateCounter += 1
            try data.sync()
            try metadata.writeSuperblock(sb)
            m.superblock = sb
            m.state = state
            stateChanged(&m, &effects)
        }
        logger.info("role Secondary")
        attachment.follow(primary: false)
    }

    func handle(_ request: ControlRequest) async -> ControlReply {
        switch request.command {
        case .status:
            return ControlReply(ok: true, status: status())
        case .primary:
            do {
                try promote(force: request.force)
                return ControlReply(ok: true, message: "\(config.name): Primary", status: status())
            } catch {
                return ControlReply(ok: false, message: "\(config.name): \(error)", status: status())
            }
        case .secondary:
            if let refusal = attachment.prepareDemotion(force: request.force) {
                return ControlReply(ok: false, message: "\(config.name): \(refusal)", status: status())
            }
            if mutable.withLockedValue({ $0.inFlight }) > 0 {
                // Let writes already accepted finish first; new ones will be refused.
                try? await Task.sleep(nanoseconds: 50_000_000)
            }
            do {
                try demote()
                return ControlReply(ok: true, message: "\(config.name): Secondary", status: status())
            } catch {
                attachment.follow(primary: mutable.withLockedValue { $0.state.role == .primary })
                return ControlReply(ok: false, message: "\(config.name): \(error)", status: status())
            }
        case .down:
            if let refusal = attachment.refuseDown(force: request.force) {
                return ControlReply(ok: false, message: "\(config.name): \(refusal)", status: status())
            }
            requestStop()
            return ControlReply(ok: true, message: "\(config.name): going down")
        case .pauseSync, .resumeSync:
            return reply(pauseSync(request.command == .pauseSync))
        case .invalidate, .invalidateRemote:
            return reply(requestResync(localIsSource: request.command == .invalidateRemote, full: request.option ?? true))
        case .verify:
            return reply(startVerify())
        case .newCurrentUUID:
            return reply(newCurrentGeneration(clearBitmap: request.option ?? false))
        case .connect:
            return reply(operatorConnect(discardMyData: request.option ?? false, dryRun: request.dryRun ?? false))
        case .disconnect:
            return reply(operatorDisconnect())
        }
    }

    private func reply(_ result: (ok: Bool, message: String)) -> ControlReply {
        ControlReply(ok: result.ok, message: "\(config.name): \(result.message)", status: status())
    }
}

extension Resource {
    /// After a local role or disk change: tell the peer, and start a sync the change makes
    /// possible (e.g. `primary --force` while the peer is Inconsistent).
    func stateChanged(_ m: inout Mutable, _ effects: inout Effects) {
        guard let peer = m.peer, let report = peer.report else { return }
        sendState(&m, &effects)
        if peer.sync == nil && m.state.replication == .established
            && (m.state.disk == .inconsistent || report.disk == .inconsistent) {
            decideSync(&m, &effects)
        }
    }
}

func hex(_ value: UInt64) -> String { GenerationIdentifiers.text(value) }
