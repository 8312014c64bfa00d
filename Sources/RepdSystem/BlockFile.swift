#if canImport(Glibc)
import Glibc
#endif
import CRepdSystem
import SystemPackage

// Linux ioctl numbers (from <linux/fs.h>), not exported to Swift as macros.
private let BLKGETSIZE64: UInt = 0x8008_1272
private let BLKDISCARD: UInt = 0x1277
private let BLKZEROOUT: UInt = 0x127F
private let BLKSSZGET: UInt = 0x1268
private let FALLOC_FL_KEEP_SIZE: Int32 = 0x01
private let FALLOC_FL_PUNCH_HOLE: Int32 = 0x02
private let FALLOC_FL_ZERO_RANGE: Int32 = 0x10

/// An open regular file or block device used for data or metadata, with positional I/O.
///
/// All methods are safe to call from several threads at once (they use positional
/// system calls only). The descriptor is closed by `close()`; the type is a plain
/// handle so that many in-flight requests can share it.
public struct BlockFile: Sendable {
    public let path: String
    public let fd: Int32
    public let isBlockDevice: Bool

    public enum Access: Sendable { case readOnly, readWrite }

    /// Opens `path`. With `create`, a missing regular file is created (mode 0600).
    public static func open(_ path: String, access: Access = .readWrite, create: Bool = false, direct: Bool = false) throws(SystemError) -> BlockFile {
        var flags: Int32 = (access == .readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC
        if create { flags |= O_CREAT }
        if direct { flags |= crepd_o_direct() }
        let fd = try retryingEINTR("open", path) { Glibc.open(path, flags, 0o600) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let code = Glibc.errno
            Glibc.close(fd)
            throw SystemError("stat", path, errno: Errno(rawValue: code))
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFBLK else {
            Glibc.close(fd)
            throw SystemError("open", "\(path) (not a regular file or block device)", errno: .invalidArgument)
        }
        return BlockFile(path: path, fd: fd, isBlockDevice: kind == S_IFBLK)
    }

    public func close() {
        _ = Glibc.close(fd)
    }

    /// The size in bytes (block devices through BLKGETSIZE64).
    public func size() throws(SystemError) -> UInt64 {
        if isBlockDevice {
            var size: UInt64 = 0
            _ = try retryingEINTR("ioctl(BLKGETSIZE64)", path) { ioctl(fd, BLKGETSIZE64, &size) }
            return size
        }
        var st = stat()
        _ = try retryingEINTR("stat", path) { fstat(fd, &st) }
        return UInt64(st.st_size)
    }

    /// Extends a regular file to at least `size` bytes (sparse).
    public func extend(to size: UInt64) throws(SystemError) {
        guard !isBlockDevice else { return }
        if try self.size() < size {
            _ = try retryingEINTR("ftruncate", path) { ftruncate(fd, off_t(size)) }
        }
    }

    /// Reads exactly `buffer.count` bytes at `offset`; short reads past the end fill with zeros.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SystemError) {
        var done = 0
        while done < buffer.count {
            let n = try retryingEINTR("pread", "\(path) at \(offset + UInt64(done))") {
                pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            }
            if n == 0 {
                (buffer.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
                return
            }
            done += n
        }
    }

    /// Fills `buffer` only if the data is in the page cache (never waits for the disk); false otherwise.
    public func readIfCached(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
        var done = 0
        while done < buffer.count {
            let n = crepd_pread_nowait(fd, buffer.baseAddress! + done, buffer.count - done, Int64(offset) + Int64(done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += Int(n)
        }
        return true
    }

    public func read(count: Int, at offset: UInt64) throws(SystemError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        do {
            try bytes.withUnsafeMutableBytes { p in try read(into: p, at: offset) }
        } catch let error as SystemError { throw error } catch { fatalError("unreachable: \(error)") }
        return bytes
    }

    /// Writes all of `buffer` at `offset`.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(SystemError) {
        var done = 0
        while done < buffer.count {
            let n = try retryingEINTR("pwrite", "\(path) at \(offset + UInt64(done))") {
                pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            }
            if n == 0 { throw SystemError("pwrite", path, errno: .noSpace) }
            done += n
        }
    }

    public func write(_ bytes: [UInt8], at offset: UInt64) throws(SystemError) {
        do {
            try bytes.withUnsafeBytes { p in try write(p, at: offset) }
        } catch let error as SystemError { throw error } catch { fatalError("unreachable: \(error)") }
    }

    /// Makes written data durable (fdatasync).
    public func sync() throws(SystemError) {
        _ = try retryingEINTR("fdatasync", path) { fdatasync(fd) }
    }

    /// Discards a range: punches a hole in a regular file, BLKDISCARD on a block device.
    /// Afterwards the range reads as zeros on a regular file.
    public func discard(offset: UInt64, length: UInt64) throws(SystemError) {
        if isBlockDevice {
            var range: (UInt64, UInt64) = (offset, length)
            _ = try retryingEINTR("ioctl(BLKDISCARD)", path) { ioctl(fd, BLKDISCARD, &range) }
        } else {
            _ = try retryingEINTR("fallocate(punch-hole)", path) {
                crepd_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, Int64(offset), Int64(length))
            }
        }
    }

    /// Zeroes a range without writing data buffers where the file system or device can.
    /// `allowHole`: a regular file may deallocate the range (punch a hole).
    /// Throws with `.notSupported` when no fast method exists, so the caller can fall back or report.
    public func zeroFast(offset: UInt64, length: UInt64, allowHole: Bool) throws(SystemError) {
        if isBlockDevice {
            var range: (UInt64, UInt64) = (offset, length)
            _ = try retryingEINTR("ioctl(BLKZEROOUT)", path) { ioctl(fd, BLKZEROOUT, &range) }
            return
        }
        let mode = allowHole ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : FALLOC_FL_ZERO_RANGE
        do throws(SystemError) {
            _ = try retryingEINTR("fallocate", path) { crepd_fallocate(fd, mode, Int64(offset), Int64(length)) }
        } catch {
            if error.errno == .notSupported || error.errno == .invalidArgument {
                throw SystemError("fallocate", path, errno: .notSupported)
            }
            throw error
        }
    }

    /// Zeroes a range, by the fast path where possible and by writing zeros otherwise.
    public func zero(offset: UInt64, length: UInt64, allowHole: Bool) throws(SystemError) {
        do throws(SystemError) {
            try zeroFast(offset: offset, length: length, allowHole: allowHole)
            return
        } catch {
            guard error.errno == .notSupported else { throw error }
        }
        let chunk = 1 << 20
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var done: UInt64 = 0
        while done < length {
            let n = Int(min(UInt64(chunk), length - done))
            try write(UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: offset + done)
            done += UInt64(n)
        }
    }

    /// Asks the kernel to read a range ahead into its cache.
    public func prefetch(offset: UInt64, length: UInt64) {
        _ = posix_fadvise(fd, off_t(offset), off_t(length), POSIX_FADV_WILLNEED)
    }

    /// Allocation map for a range of a regular file: runs of (length, isHole).
    /// Block devices report everything as data.
    public func allocationMap(offset: UInt64, length: UInt64, end fileEnd: UInt64) -> [(length: UInt64, hole: Bool)] {
        let stop = min(offset + length, fileEnd)
        guard !isBlockDevice, offset < stop else { return [(length: stop > offset ? stop - offset : length, hole: false)] }
        var runs: [(length: UInt64, hole: Bool)] = []
        var pos = offset
        while pos < stop {
            let data = crepd_seek_data(fd, Int64(pos))
            if data < 0 {
                // ENXIO: no data after pos, the rest is a hole. Anything else: say data.
                let hole = Glibc.errno == ENXIO
                runs.append((length: stop - pos, hole: hole))
                break
            }
            if UInt64(data) > pos {
                let holeEnd = min(UInt64(data), stop)
                runs.append((length: holeEnd - pos, hole: true))
                pos = holeEnd
                continue
            }
            let hole = crepd_seek_hole(fd, Int64(pos))
            let dataEnd = hole < 0 ? stop : min(UInt64(hole), stop)
            runs.append((length: dataEnd - pos, hole: false))
            pos = dataEnd
        }
        return runs
    }
}
