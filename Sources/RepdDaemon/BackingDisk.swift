import Foundation
import RepdConfig
import RepdCore
import RepdEngine
import RepdStorage
import RepdSystem

/// The backing disk and its metadata, opened together: what the engine's I/O goes to while the
/// disk is attached. Every I/O the driver carries out holds the disk it was issued for, so a disk
/// the engine let go of is closed only once the last of its requests has returned (`deinit`).
final class BackingDisk: Sendable {
    let data: LocalDisk
    let metadata: MetadataStore

    /// The disk as `repd up` or `repd attach` found it.
    struct Opened {
        let disk: BackingDisk
        let superblock: Superblock
        let bitmap: DirtyBitmap
        let replay: ActivityLog.Replay
        let usableSize: UInt64
    }

    private init(data: LocalDisk, metadata: MetadataStore) {
        self.data = data
        self.metadata = metadata
    }

    deinit {
        data.file.close()
        metadata.close()
    }

    /// Opens the resource's disk and reads its metadata.
    static func open(_ config: ResolvedResource) throws -> Opened {
        let file = try BlockFile.open(config.local.disk)
        let metadata: MetadataStore
        let superblock: Superblock
        let bitmap: DirtyBitmap
        let replay: ActivityLog.Replay
        do {
            metadata = try MetadataStore.locate(metaDisk: config.local.metaDisk, data: file, create: false)
            superblock = try metadata.readSuperblock(expectedResource: config.name)
            bitmap = try metadata.readBitmap()
            // Slots of any table size the ring can describe (al-extents may have changed since create-md).
            replay = ActivityLog.replay(try metadata.readActivityLog(), slotCount: Resource.maximumActivityLogExtents)
        } catch {
            file.close()
            throw error
        }
        var usable = superblock.layout.usableSize
        if let limit = config.disk.sizeBytes, limit < usable { usable = limit - limit % Geometry.blockSize }
        let disk = BackingDisk(data: LocalDisk(file: file, usableSize: usable), metadata: metadata)
        return Opened(disk: disk, superblock: superblock, bitmap: bitmap, replay: replay, usableSize: usable)
    }
}

/// The daemon's record of a failed disk, kept in the run directory (`RES.disk-failed`) beside
/// the superblock's `disk-failed` flag (which a dead disk may not take): while it exists, `repd up`
/// starts Diskless without touching the disk, until `repd attach` succeeds.
struct DiskFailureRecord: Codable {
    var failure: DiskFailure
    /// The usable size of the resource, so that a Diskless start knows it without the disk.
    var usableSize: UInt64
    /// The detach could not write the disk's bitmap: an attach of this disk resyncs every block.
    var bitmapLost = false

    static func path(_ run: RunDirectory) -> String { "\(run.path)/\(run.resource).disk-failed" }

    static func load(_ run: RunDirectory) -> DiskFailureRecord? {
        guard ProcessSupport.fileExists(path(run)), let text = try? ProcessSupport.readTextFile(path(run)) else { return nil }
        return try? JSONDecoder().decode(DiskFailureRecord.self, from: Data(text.utf8))
    }

    func save(_ run: RunDirectory) throws(SystemError) {
        let data = (try? JSONEncoder().encode(self)) ?? Data()
        try ProcessSupport.writeTextFile(DiskFailureRecord.path(run), String(decoding: data, as: UTF8.self) + "\n")
    }

    static func remove(_ run: RunDirectory) {
        ProcessSupport.removeFile(path(run))
    }
}
