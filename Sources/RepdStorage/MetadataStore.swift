import RepdConfig
import RepdCore
import RepdSystem

/// Where a resource's metadata lives and how to read and write it.
///
/// Pure encoding lives in RepdCore (`Superblock`, `DirtyBitmap`); this type only places the
/// bytes on the metadata device and makes them durable.
public final class MetadataStore: @unchecked Sendable {
    public let file: BlockFile
    /// Set once, when the store is opened (the superblock's own layout when the disk grew
    /// while the resource was down: see `readSuperblock`).
    public private(set) var layout: MetadataLayout
    /// The backing disk gives this many usable bytes, more than the metadata describes: it grew
    /// while the resource was down (external metadata). `repd resize` takes it into use.
    public private(set) var grownUsableSize: UInt64?
    /// The path of the metadata device (the backing disk itself for internal metadata).
    public let path: String
    private let ownsFile: Bool

    public enum Failure: Error, Sendable, CustomStringConvertible {
        case system(SystemError)
        case metadata(MetadataError, path: String, offset: UInt64)
        case alreadyExists(resource: String, path: String, offset: UInt64)
        case layoutChanged(expected: MetadataLayout, found: MetadataLayout, path: String)

        public var description: String {
            switch self {
            case .system(let e):
                return "\(e)"
            case .metadata(.noMetadata, let path, let offset):
                return "no repd metadata found on \(path) at offset \(offset); create it with `repd create-md`"
            case .metadata(let e, let path, let offset):
                return "metadata on \(path) at offset \(offset) is unusable: \(e); it will not be used "
                    + "(recreate it with `repd create-md --force` only if the data may be resynced)"
            case .alreadyExists(let resource, let path, let offset):
                return "\(path) already holds repd metadata for resource '\(resource)' at offset \(offset); "
                    + "refusing to overwrite it without --force"
            case .layoutChanged(let expected, let found, let path):
                return "metadata on \(path) describes \(found.usableSize) usable bytes but the backing disk now gives "
                    + "\(expected.usableSize); the disk changed size since create-md"
            }
        }
    }

    private init(file: BlockFile, layout: MetadataLayout, path: String, ownsFile: Bool) {
        self.file = file
        self.layout = layout
        self.path = path
        self.ownsFile = ownsFile
    }

    /// Computes the layout for a resource and opens the metadata device.
    /// `data` is the already open backing disk; internal metadata shares it.
    public static func locate(metaDisk: MetaDisk, data: BlockFile, create: Bool) throws(Failure) -> MetadataStore {
        try asFailure {
            let backingSize = try data.size()
            switch metaDisk {
            case .internal:
                let layout = try layoutOrThrow { () throws(MetadataError) in try MetadataLayout.internal(backingSize: backingSize) }
                return MetadataStore(file: data, layout: layout, path: data.path, ownsFile: false)
            case .external(let path, let index):
                let file = try BlockFile.open(path, create: create)
                let deviceSize: UInt64? = file.isBlockDevice ? try file.size() : nil
                do {
                    let layout = try layoutOrThrow { () throws(MetadataError) in
                        try MetadataLayout.external(backingSize: backingSize, metaDeviceSize: deviceSize, index: index)
                    }
                    return MetadataStore(file: file, layout: layout, path: path, ownsFile: true)
                } catch {
                    file.close()
                    throw error
                }
            }
        }
    }

    /// Runs `body`, whose errors are the system's or already a `Failure`, and throws a `Failure`.
    private static func asFailure<T>(_ body: () throws -> T) throws(Failure) -> T {
        do {
            return try body()
        } catch let error as SystemError {
            throw .system(error)
        } catch let error as Failure {
            throw error
        } catch {
            throw .system(SystemError("metadata", "\(error)", errno: .ioError))
        }
    }

    private static func layoutOrThrow(_ body: () throws(MetadataError) -> MetadataLayout) throws -> MetadataLayout {
        do {
            return try body()
        } catch {
            throw Failure.metadata(error, path: "", offset: 0)
        }
    }

    public func close() {
        if ownsFile { file.close() }
    }

    /// The layout for the backing disk at `backingSize` (`repd resize`): external metadata keeps
    /// its place and its bitmap grows in place (a metadata file is extended; a metadata device
    /// or indexed slot must have room). Internal metadata would have to move to the new end of
    /// the disk: refused.
    public func grownLayout(metaDisk: MetaDisk, backingSize: UInt64) throws(Failure) -> MetadataLayout {
        guard case .external(_, let index) = metaDisk else {
            throw .system(SystemError("resize", path, errno: .notSupported))
        }
        return try Self.asFailure {
            let deviceSize: UInt64? = file.isBlockDevice ? try file.size() : nil
            return try Self.layoutOrThrow { () throws(MetadataError) in
                try MetadataLayout.external(backingSize: backingSize, metaDeviceSize: deviceSize, index: index)
            }
        }
    }

    /// Reads and checks the superblock.
    public func readSuperblock(expectedResource: String?) throws(Failure) -> Superblock {
        let bytes: [UInt8]
        do {
            bytes = try file.read(count: Superblock.size, at: layout.metadataOffset)
        } catch {
            throw .system(error)
        }
        let superblock: Superblock
        do {
            superblock = try Superblock.decode(bytes, expectedResource: expectedResource)
        } catch {
            throw .metadata(error, path: path, offset: layout.metadataOffset)
        }
        if superblock.layout != layout {
            guard Self.grewOffline(from: superblock.layout, to: layout) else {
                throw .layoutChanged(expected: layout, found: superblock.layout, path: path)
            }
            // External metadata of a disk that grew while down: the metadata describes the old
            // size, at the same place; it is used as it is, and `repd resize` grows it.
            grownUsableSize = layout.usableSize
            layout = superblock.layout
        }
        return superblock
    }

    /// `found` (the superblock's) is the same external area as `computed`, for a smaller disk.
    static func grewOffline(from found: MetadataLayout, to computed: MetadataLayout) -> Bool {
        found.metadataOffset == computed.metadataOffset && found.activityLogOffset == computed.activityLogOffset
            && found.activityLogSize == computed.activityLogSize && found.bitmapOffset == computed.bitmapOffset
            && found.usableSize < computed.usableSize && found.bitmapSize <= computed.bitmapSize
            && (found.metadataSize == computed.metadataSize || computed.metadataOffset == 0)
            && (try? found.validate()) != nil
    }

    /// Whether any valid superblock (of any resource) is at this location.
    public func existingResource() -> String? {
        guard let bytes = try? file.read(count: Superblock.size, at: layout.metadataOffset),
              let sb = try? Superblock.decode(bytes, expectedResource: nil)
        else { return nil }
        return sb.resourceName
    }

    /// Writes a fresh superblock, an empty activity log and a clear bitmap, durably.
    public func initialize(_ superblock: Superblock, force: Bool) throws(Failure) {
        if !force, let other = existingResource() {
            throw .alreadyExists(resource: other, path: path, offset: layout.metadataOffset)
        }
        do {
            try file.extend(to: layout.metadataOffset + layout.metadataSize)
            try file.zero(offset: layout.metadataOffset + layout.activityLogOffset, length: layout.activityLogSize, allowHole: false)
            try file.zero(offset: layout.metadataOffset + layout.bitmapOffset, length: layout.bitmapSize, allowHole: false)
            try file.write(superblock.encoded(), at: layout.metadataOffset)
            try file.sync()
        } catch {
            throw .system(error)
        }
    }

    /// Writes the superblock (the caller bumps the update counter) and makes it durable.
    public func writeSuperblock(_ superblock: Superblock) throws(SystemError) {
        try file.write(superblock.encoded(), at: layout.metadataOffset)
        try file.sync()
    }

    public func readBitmap() throws(Failure) -> DirtyBitmap {
        do {
            let bytes = try file.read(count: Int(layout.bitmapSize), at: layout.metadataOffset + layout.bitmapOffset)
            return try DirtyBitmap(decoding: bytes, blockCount: layout.blockCount)
        } catch let error as SystemError {
            throw .system(error)
        } catch let error as MetadataError {
            throw .metadata(error, path: path, offset: layout.metadataOffset + layout.bitmapOffset)
        } catch {
            throw .system(SystemError("read bitmap", path, errno: .ioError))
        }
    }

    /// Writes the given bitmap pages (4 KiB each), without syncing.
    public func writeBitmapPages(_ bitmap: DirtyBitmap, pages: some Sequence<Int>) throws(SystemError) {
        for page in pages {
            let offset = layout.metadataOffset + layout.bitmapOffset + UInt64(page) * 4096
            try file.write(bitmap.page(page), at: offset)
        }
    }

    /// Writes one bitmap page (4 KiB) as the engine handed it over, without syncing.
    public func writeBitmapPage(index: Int, bytes: [UInt8]) throws(SystemError) {
        try file.write(bytes, at: layout.metadataOffset + layout.bitmapOffset + UInt64(index) * 4096)
    }

    /// Reads every block of the activity-log ring; a damaged block is a failure in its place.
    public func readActivityLog() throws(SystemError) -> [Result<ActivityLogTransaction?, MetadataError>] {
        let bytes = try file.read(count: Int(layout.activityLogSize), at: layout.metadataOffset + layout.activityLogOffset)
        let blockSize = ActivityLogTransaction.blockSize
        return stride(from: 0, to: bytes.count - blockSize + 1, by: blockSize).map { start in
            let block = Array(bytes[start..<(start + blockSize)])
            return Result { () throws(MetadataError) in try ActivityLogTransaction.decode(block) }
        }
    }

    /// Writes one activity-log transaction to its ring block and makes it durable.
    public func writeActivityLog(_ transaction: ActivityLogTransaction, ringSlot: Int) throws(SystemError) {
        try file.write(transaction.encoded(), at: layout.activityLogSlotOffset(ringSlot))
        try file.sync()
    }

    /// Makes everything written so far durable.
    public func sync() throws(SystemError) {
        try file.sync()
    }
}
