import ControlProtocol
import RepdConfig
import RepdCore
import RepdEngine
import RepdStorage

/// `repd resize`: the backing disk grew (a file extended, an LV grown); the engine takes the new
/// size (Resize.swift in RepdEngine) and the replicated size follows once the peer's grew too.
extension Resource {
    func resize(assumeClean: Bool) async -> ControlReply {
        let name = config.name
        guard let backing = state.withLockedValue({ $0.engine.diskAttached ? $0.backing : nil }) else {
            return ControlReply(ok: false, message: "\(name): no disk is attached", status: status())
        }
        if case .internal = config.local.metaDisk {
            return ControlReply(ok: false, message: "\(name): internal metadata sits at the end of the disk and would have to move to its new end; "
                + "online resize needs external metadata (meta-disk FILE or DEVICE). With internal metadata: `repd down \(name)`, "
                + "`repd dump-md \(name) > FILE`, grow the disk, `repd create-md \(name)` and let the peer resync", status: status())
        }
        let layout: MetadataLayout
        do {
            var size = try backing.data.file.size()
            if let limit = config.disk.sizeBytes { size = min(size, limit) }
            layout = try backing.metadata.grownLayout(metaDisk: config.local.metaDisk, backingSize: size)
        } catch {
            return ControlReply(ok: false, message: "\(name): cannot grow the metadata for \(config.local.disk): \(error)", status: status())
        }
        let answer = await ask { .resize($0, layout: layout, assumeClean: assumeClean) }
        return ControlReply(ok: answer.ok, message: answer.message, status: status())
    }
}
