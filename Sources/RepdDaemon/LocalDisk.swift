import Crypto
import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine
import RepdSystem

/// The backing disk as the driver uses it: reads into ByteBuffers (from the page cache without
/// blocking where possible), writes from them, digests. Runs on whatever thread the driver
/// chooses; no state of its own besides the file.
struct LocalDisk: Sendable {
    let file: BlockFile
    /// The end of the usable area (block status never reports past it).
    let usableSize: UInt64

    /// Cached reads never wait for the disk: up to 1 MiB is copied on the event loop.
    static let inlineReadLimit = 1 << 20
    /// Small buffered writes go to the page cache on the calling thread: a hand-off to the thread
    /// pool (two thread wake-ups) costs more than the copy. When the write is also replicated,
    /// large ones go to the pool all the same: the event loop then keeps receiving and sending
    /// while another core copies into the page cache.
    static let inlineReplicatedWriteLimit = 128 * 1024
    static let inlineWriteLimit = 1 << 20

    static func writesInline(_ write: LocalWrite) -> Bool {
        write.kind == .data && !write.fua && write.range.count <= (write.replicated ? inlineReplicatedWriteLimit : inlineWriteLimit)
    }

    /// Reads `count` bytes at `offset` if they are all in the page cache; nil otherwise.
    func readIfCached(offset: UInt64, count: Int) -> ByteBuffer? {
        guard count <= Self.inlineReadLimit else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var ok = false
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { (p: UnsafeMutableRawBufferPointer) -> Int in
            ok = file.readIfCached(into: UnsafeMutableRawBufferPointer(rebasing: p[0..<count]), at: offset)
            return ok ? count : 0
        }
        return ok ? buffer : nil
    }

    /// Reads `count` bytes at `offset` into a new buffer.
    func read(offset: UInt64, count: Int) throws(SystemError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var failure: SystemError?
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { (p: UnsafeMutableRawBufferPointer) -> Int in
            do throws(SystemError) {
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: p[0..<count]), at: offset)
                return count
            } catch {
                failure = error
                return 0
            }
        }
        if let failure { throw failure }
        return buffer
    }

    /// Carries out a local read the engine asked for.
    func perform(_ kind: LocalReadKind, range: Range<UInt64>) -> Result<ReadOutcome, IOFailure> {
        do throws(SystemError) {
            switch kind {
            case .data:
                return .success(ReadOutcome(data: try read(offset: range.lowerBound, count: range.count)))
            case .dataAndDigests(let algorithm):
                let data = try read(offset: range.lowerBound, count: range.count)
                return .success(ReadOutcome(data: data, digests: Self.blockDigests(data, algorithm: algorithm)))
            case .digests(let algorithm):
                let data = try read(offset: range.lowerBound, count: range.count)
                return .success(ReadOutcome(digests: Self.blockDigests(data, algorithm: algorithm)))
            case .prefetch:
                file.prefetch(offset: range.lowerBound, length: UInt64(range.count))
                return .success(ReadOutcome())
            case .allocation:
                let runs = file.allocationMap(offset: range.lowerBound, length: UInt64(range.count), end: usableSize)
                return .success(ReadOutcome(allocation: runs.map { AllocationRun(length: $0.length, hole: $0.hole) }))
            }
        } catch {
            return .failure(Self.failure(error))
        }
    }

    /// Carries out a local write, trim or zeroing.
    func perform(_ write: LocalWrite) -> IOFailure? {
        do throws(SystemError) {
            for segment in write.segments where !segment.isEmpty {
                switch write.kind {
                case .data:
                    guard let payload = write.payload else { return IOFailure(.invalid, "write without data") }
                    let start = Int(segment.lowerBound - write.range.lowerBound)
                    let end = start + segment.count
                    guard end <= payload.readableBytes else { return IOFailure(.invalid, "write payload shorter than its range") }
                    try payload.withUnsafeReadableBytes { (p: UnsafeRawBufferPointer) throws(SystemError) -> Void in
                        try file.write(UnsafeRawBufferPointer(rebasing: p[start..<end]), at: segment.lowerBound)
                    }
                case .trim:
                    try file.discard(offset: segment.lowerBound, length: UInt64(segment.count))
                case .zeroes:
                    if write.fastZero {
                        do throws(SystemError) {
                            try file.zeroFast(offset: segment.lowerBound, length: UInt64(segment.count), allowHole: !write.noHole)
                        } catch {
                            guard error.errno == .notSupported else { throw error }
                            return IOFailure(.notSupported, "no fast zeroing on \(file.path)")
                        }
                    } else {
                        try file.zero(offset: segment.lowerBound, length: UInt64(segment.count), allowHole: !write.noHole)
                    }
                }
            }
            if write.fua { try file.sync() }
            return nil
        } catch {
            return Self.failure(error)
        }
    }

    func sync() -> IOFailure? {
        do throws(SystemError) {
            try file.sync()
            return nil
        } catch {
            return Self.failure(error)
        }
    }

    static func failure(_ error: SystemError) -> IOFailure {
        IOFailure(error.errno == .noSpace ? .noSpace : .io, "\(error)")
    }

    /// The digest of each 4 KiB block of `buffer`, in order.
    static func blockDigests(_ buffer: ByteBuffer, algorithm: String) -> [[UInt8]] {
        buffer.withUnsafeReadableBytes { bytes in
            stride(from: 0, to: bytes.count, by: Int(Geometry.blockSize)).map { start in
                digest(UnsafeRawBufferPointer(rebasing: bytes[start..<min(bytes.count, start + Int(Geometry.blockSize))]), algorithm: algorithm)
            }
        }
    }

    /// The digest of all of `buffer` (`data-integrity-alg`).
    static func digest(_ buffer: ByteBuffer, algorithm: String) -> [UInt8] {
        buffer.withUnsafeReadableBytes { digest($0, algorithm: algorithm) }
    }

    /// md5, sha1, sha256, or crc32c (little-endian) for any other name.
    static func digest(_ bytes: UnsafeRawBufferPointer, algorithm: String) -> [UInt8] {
        switch algorithm {
        case "md5": return Array(Insecure.MD5.hash(data: bytes))
        case "sha1": return Array(Insecure.SHA1.hash(data: bytes))
        case "sha256": return Array(SHA256.hash(data: bytes))
        default:
            let crc = CRC32C.checksum(bytes)
            return [UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc >> 16 & 0xff), UInt8(crc >> 24)]
        }
    }
}
