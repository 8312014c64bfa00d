import ControlProtocol
import RepdConfig
import RepdEngine
import RepdNet

/// `repd adjust`: the resource file read again and what changed applied without downtime, or the
/// whole change refused (nothing applied) when part of it cannot change on a running resource.
extension Resource {
    func adjust(configDirectory: String, dryRun: Bool) async -> ControlReply {
        let name = config.name
        let file: ResolvedResource
        do throws(ConfigError) {
            file = try ConfigLoader(directory: configDirectory).resolve(resource: name, node: node)
        } catch {
            return ControlReply(ok: false, message: error.description)
        }
        let plan = AdjustPlan(running: config, file: file)
        let lines = plan.changes.map { "  \($0)" }.joined(separator: "\n")
        if plan.isEmpty {
            return ControlReply(ok: true, message: "\(name): nothing to adjust: the running resource matches \(file.file)")
        }
        if !plan.refusals.isEmpty {
            return ControlReply(ok: false, message: "\(name): refusing to adjust (nothing was changed):\n\(lines)")
        }
        if dryRun {
            return ControlReply(ok: true, message: "\(name): would adjust (--dry-run, nothing was changed):\n\(lines)")
        }
        let tls: TLSSetup.PeerContexts?
        do {
            tls = try Self.linkTLS(file)
        } catch {
            return ControlReply(ok: false, message: "\(name): \(error); nothing was changed")
        }
        let usable = state.withLockedValue { $0.engine.configuration.usableSize }
        let settings = EngineConfiguration(resolved: file, node: node, usableSize: usable, runDirectory: run.path)
        let answer = await ask { .adjust($0, settings) }
        guard answer.ok else {
            return ControlReply(ok: false, message: "\(answer.message); nothing was changed", status: status())
        }
        configBox.withLockedValue { $0 = file }
        if var link = Self.linkConfiguration(file, node: node) {
            link.tls = tls
            self.link?.update(link)
            fenceServer?.update(link)
        }
        logger.info("adjusted from \(file.file): \(plan.changes.map(\.description).joined(separator: "; "))")
        return ControlReply(ok: true, message: "\(name): adjusted:\n\(lines)", status: status())
    }
}
