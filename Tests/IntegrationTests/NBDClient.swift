import CNBD
import Foundation
import XCTest

/// A thin Swift handle over libnbd, the real client library, for tests.
/// libnbd handles may be used from several threads at once.
final class NBDClient: @unchecked Sendable {
    let handle: OpaquePointer

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var errno: Int32
        var description: String { "\(message) (errno \(errno))" }
    }

    static func lastError() -> Failure {
        Failure(message: nbd_get_error().map { String(cString: $0) } ?? "unknown libnbd error", errno: nbd_get_errno())
    }

    init(uri: String, structured: Bool = true, metaContext: Bool = true) throws {
        guard let h = nbd_create() else { throw Self.lastError() }
        handle = h
        nbd_set_request_structured_replies(h, structured)
        if metaContext { nbd_add_meta_context(h, "base:allocation") }
        guard nbd_connect_uri(h, uri) == 0 else {
            let error = Self.lastError()
            nbd_close(h)
            throw error
        }
    }

    deinit {
        nbd_shutdown(handle, 0)
        nbd_close(handle)
    }

    var size: Int64 { nbd_get_size(handle) }

    func pread(count: Int, offset: UInt64) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        guard nbd_pread(handle, &buf, count, offset, 0) == 0 else { throw Self.lastError() }
        return buf
    }

    func pwrite(_ bytes: [UInt8], offset: UInt64, flags: UInt32 = 0) throws {
        guard nbd_pwrite(handle, bytes, bytes.count, offset, flags) == 0 else { throw Self.lastError() }
    }

    func flush() throws {
        guard nbd_flush(handle, 0) == 0 else { throw Self.lastError() }
    }

    func trim(count: UInt64, offset: UInt64, flags: UInt32 = 0) throws {
        guard nbd_trim(handle, count, offset, flags) == 0 else { throw Self.lastError() }
    }

    func zero(count: UInt64, offset: UInt64, flags: UInt32 = 0) throws {
        guard nbd_zero(handle, count, offset, flags) == 0 else { throw Self.lastError() }
    }

    /// base:allocation extents for a range: (length, flags).
    func blockStatus(count: UInt64, offset: UInt64, flags: UInt32 = 0) throws -> [(UInt32, UInt32)] {
        final class Box { var entries: [(UInt32, UInt32)] = [] }
        let box = Box()
        let context = Unmanaged.passRetained(box).toOpaque()
        let callback = nbd_extent_callback(
            callback: { userData, metacontext, _, entries, count, _ in
                let box = Unmanaged<Box>.fromOpaque(userData!).takeUnretainedValue()
                guard let metacontext, String(cString: metacontext) == "base:allocation", let entries else { return 0 }
                for i in stride(from: 0, to: count, by: 2) { box.entries.append((entries[i], entries[i + 1])) }
                return 0
            },
            user_data: context,
            free: { userData in Unmanaged<Box>.fromOpaque(userData!).release() })
        guard nbd_block_status(handle, count, offset, callback, flags) == 0 else { throw Self.lastError() }
        return box.entries
    }

    /// Issues every operation asynchronously, then waits for all: many requests in flight at once.
    /// Returns the per-request results (0 ok, else errno).
    func inFlight(writes: [(offset: UInt64, bytes: [UInt8])], flags: UInt32 = 0) throws -> [Int32] {
        var cookies: [Int64] = []
        let buffers = writes.map { w -> UnsafeMutableRawBufferPointer in
            let p = UnsafeMutableRawBufferPointer.allocate(byteCount: w.bytes.count, alignment: 8)
            p.copyBytes(from: w.bytes)
            return p
        }
        defer { buffers.forEach { $0.deallocate() } }
        let none = nbd_completion_callback(callback: nil, user_data: nil, free: nil)
        for (i, w) in writes.enumerated() {
            let cookie = nbd_aio_pwrite(handle, buffers[i].baseAddress, w.bytes.count, w.offset, none, flags)
            guard cookie >= 0 else { throw Self.lastError() }
            cookies.append(cookie)
        }
        XCTAssertGreaterThan(nbd_aio_in_flight(handle), 1, "requests should be in flight together")
        return try wait(cookies)
    }

    func inFlight(reads: [(offset: UInt64, count: Int)]) throws -> [[UInt8]] {
        let buffers = reads.map { UnsafeMutableRawBufferPointer.allocate(byteCount: $0.count, alignment: 8) }
        defer { buffers.forEach { $0.deallocate() } }
        let none = nbd_completion_callback(callback: nil, user_data: nil, free: nil)
        var cookies: [Int64] = []
        for (i, r) in reads.enumerated() {
            let cookie = nbd_aio_pread(handle, buffers[i].baseAddress, r.count, r.offset, none, 0)
            guard cookie >= 0 else { throw Self.lastError() }
            cookies.append(cookie)
        }
        let results = try wait(cookies)
        XCTAssertEqual(results, Array(repeating: 0, count: reads.count))
        return buffers.map { Array($0) }
    }

    private func wait(_ cookies: [Int64]) throws -> [Int32] {
        let deadline = Date().addingTimeInterval(60)
        while nbd_aio_in_flight(handle) > 0 {
            guard Date() < deadline else { throw Failure(message: "requests did not complete within 60 s", errno: 0) }
            guard nbd_poll(handle, 1000) >= 0 else { throw Self.lastError() }
        }
        return cookies.map { cookie in
            nbd_aio_command_completed(handle, UInt64(cookie)) == 1 ? 0 : nbd_get_errno()
        }
    }
}

/// Deterministic test data: block `i` of a pattern is filled from a seed so every block differs.
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        out[i] = UInt8(truncatingIfNeeded: state)
    }
    return out
}
