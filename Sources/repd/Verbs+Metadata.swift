import ArgumentParser
import ControlProtocol
import RepdConfig
import RepdCore
import RepdDaemon
import RepdStorage
import RepdSystem

struct CreateMD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-md",
        abstract: "Write fresh metadata for a resource on this node.",
        discussion: """
            Internal metadata sits at the end of the backing disk and shrinks the usable size; external metadata (meta-disk PATH or PATH[INDEX]) leaves the disk whole. Existing metadata is never overwritten without --force.
            Example: repd create-md r0 --node alpha
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Overwrite existing metadata (its generation identifiers and bitmap are lost).") var force = false

    func run() async throws {
        try await Repd.guarded {
            let config = try common.resolve(resource)
            let run = RunDirectory(path: common.runDir, resource: resource)
            if let pid = PIDFile.runningPID(run.pidFile) {
                // A running resource without its disk (after a failure or `repd detach`) takes a new
                // one: create-md on it, then `repd attach`, as with DRBD.
                let disk = (try? sendControl(ControlRequest(.status), common: common, resource: resource))?.status?.devices.first?.diskState
                guard disk == "Diskless" else {
                    throw CLIError(.alreadyUp, "\(resource) is up (pid \(pid)) with its disk attached (\(disk ?? "?")); "
                        + "take it down, or `repd detach \(resource)` first, before creating metadata")
                }
            }
            let (data, store) = try openStorage(config, create: true)
            defer { store.close(); data.close() }
            let superblock = Superblock(
                layout: store.layout, resourceName: config.name, nodeName: common.node,
                deviceUUID: ProcessSupport.randomUInt64(), createdAt: ProcessSupport.unixTime(),
                alExtents: UInt32(config.disk.alExtents))
            do throws(MetadataStore.Failure) {
                try store.initialize(superblock, force: force)
            } catch {
                if case .alreadyExists = error { throw CLIError(.metadata, error.description) }
                throw CLIError(.device, error.description)
            }
            print("\(resource): metadata created on \(store.path) at offset \(store.layout.metadataOffset) "
                + "(\(store.layout.metadataSize) bytes); usable size \(store.layout.usableSize) bytes")
        }
    }
}

struct DumpMD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-md",
        abstract: "Print a resource's metadata on this node.",
        discussion: "Example: repd dump-md r0 --json"
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await Repd.guarded {
            let config = try common.resolve(resource)
            let (data, store) = try openStorage(config, create: false)
            defer { store.close(); data.close() }
            let superblock: Superblock
            let bitmap: DirtyBitmap
            do throws(MetadataStore.Failure) {
                superblock = try store.readSuperblock(expectedResource: config.name)
                bitmap = try store.readBitmap()
            } catch {
                throw CLIError(.metadata, error.description)
            }
            let dump = MetadataDump(superblock: superblock, bitmap: bitmap, path: store.path)
            if PIDFile.runningPID(RunDirectory(path: common.runDir, resource: resource).pidFile) != nil {
                printError("repd: note: \(resource) is up; the running daemon may hold newer state than the disk")
            }
            print(json ? try ControlCodec.prettyJSON(dump) : dump.text())
        }
    }
}

/// Opens the backing disk and locates the metadata, turning failures into CLI errors.
func openStorage(_ config: ResolvedResource, create: Bool) throws -> (BlockFile, MetadataStore) {
    let data: BlockFile
    do {
        data = try BlockFile.open(config.local.disk)
    } catch {
        throw CLIError(.device, "cannot open backing disk: \(error)")
    }
    do {
        return (data, try MetadataStore.locate(metaDisk: config.local.metaDisk, data: data, create: create))
    } catch {
        data.close()
        throw CLIError(.device, "\(error)")
    }
}


/// The printed form of metadata, for `dump-md`.
struct MetadataDump: Encodable {
    var resource: String
    var node: String
    var version: UInt32
    var flags: [String]
    var current: String
    var bitmapUUID: String
    var history: [String]
    var deviceUUID: String
    var usableSizeBytes: UInt64
    var metadataPath: String
    var metadataOffset: UInt64
    var metadataSize: UInt64
    var activityLogExtents: UInt32
    var bitmapBlocks: Int
    var outOfSyncBlocks: Int
    var outOfSyncKiB: UInt64
    var updateCounter: UInt64
    var createdAt: UInt64

    enum CodingKeys: String, CodingKey {
        case resource, node, version, flags, history
        case current = "current-uuid"
        case bitmapUUID = "bitmap-uuid"
        case deviceUUID = "device-uuid"
        case usableSizeBytes = "usable-size-bytes"
        case metadataPath = "metadata-path"
        case metadataOffset = "metadata-offset"
        case metadataSize = "metadata-size"
        case activityLogExtents = "al-extents"
        case bitmapBlocks = "bitmap-blocks"
        case outOfSyncBlocks = "out-of-sync-blocks"
        case outOfSyncKiB = "out-of-sync-kib"
        case updateCounter = "update-counter"
        case createdAt = "created-at"
    }

    init(superblock sb: Superblock, bitmap: DirtyBitmap, path: String) {
        resource = sb.resourceName
        node = sb.nodeName
        version = sb.version
        flags = sb.flags.names
        current = hex16(sb.generation.current)
        bitmapUUID = hex16(sb.generation.bitmap)
        history = sb.generation.history.map(hex16)
        deviceUUID = hex16(sb.deviceUUID)
        usableSizeBytes = sb.layout.usableSize
        metadataPath = path
        metadataOffset = sb.layout.metadataOffset
        metadataSize = sb.layout.metadataSize
        activityLogExtents = sb.alExtents
        bitmapBlocks = bitmap.blockCount
        outOfSyncBlocks = bitmap.outOfSyncCount
        outOfSyncKiB = UInt64(bitmap.outOfSyncCount) * 4
        updateCounter = sb.updateCounter
        createdAt = sb.createdAt
    }

    func text() -> String {
        """
        resource \(resource) (metadata written by node \(node), format version \(version))
          generation identifiers: current \(current) bitmap \(bitmapUUID) history \(history.joined(separator: " "))
          flags: \(flags.isEmpty ? "none (Inconsistent)" : flags.joined(separator: " "))
          usable size: \(usableSizeBytes) bytes (\(usableSizeBytes / 1024) KiB)
          metadata: \(metadataPath) offset \(metadataOffset) size \(metadataSize)
          activity log: \(activityLogExtents) extents of 4 MiB
          bitmap: \(bitmapBlocks) blocks of 4 KiB, \(outOfSyncBlocks) out of sync (\(outOfSyncKiB) KiB)
          device uuid \(deviceUUID), update counter \(updateCounter), created at \(createdAt) (unix time)
        """
    }
}

func hex16(_ value: UInt64) -> String { GenerationIdentifiers.text(value) }
