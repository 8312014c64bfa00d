import NIOCore
import PeerProtocol
import RepdCore

/// One or more messages of every type, with small payloads so the decoder verifier can drip-feed them.
enum Samples {
    static func bytes(_ count: Int, seed: UInt8 = 1) -> ByteBuffer {
        var buffer = ByteBuffer()
        for i in 0..<count { buffer.writeInteger(UInt8(truncatingIfNeeded: i &* 31 &+ Int(seed))) }
        return buffer
    }

    static let hello = PeerHello(
        versionMin: 1, versionMax: 3, features: 0xA5, resource: "r0", node: "alpha", peer: "beta",
        nonce: 0x0102_0304_0506_0708, authRequired: true)

    static let state = PeerStateReport(
        role: .primary, disk: .upToDate, usableSize: 1 << 30,
        generation: GenerationIdentifiers(current: 0x1111, bitmap: 0x2222, history: [0x3333, 0x4444]),
        outOfSyncBlocks: 77, flags: [.consistent, .wasUpToDate], replicationProtocol: UInt8(ascii: "B"),
        allowTwoPrimaries: true)

    static let all: [PeerMessage] = [
        .hello(hello),
        .hello(PeerHello(resource: "", node: "ü-node", peer: "β", nonce: 0, authRequired: false)),
        .authChallenge(algorithm: "sha256", challenge: Array(0..<32)),
        .authChallenge(algorithm: "sha1", challenge: Array(repeating: 0xFF, count: 64)),
        .authResponse(mac: Array(100..<132)),
        .authResponse(mac: []),
        .authResult(accepted: true, reason: ""),
        .authResult(accepted: false, reason: "no"),
        .chosen,
        .state(state),
        .state(PeerStateReport(
            role: .unknown, disk: .diskless, usableSize: 0, generation: GenerationIdentifiers(current: 4), outOfSyncBlocks: 0)),
        .write(PeerWrite(sequence: 9, offset: 4096, data: bytes(512), fua: true)),
        .write(PeerWrite(sequence: 10, offset: 0, length: 1 << 20, kind: .trim)),
        .write(PeerWrite(sequence: 11, offset: 8192, length: 4096, kind: .zeroes, fua: true, noHole: true)),
        .writeAck(sequence: 9, status: 0),
        .writeAck(sequence: 10, status: 5),
        .receiveAck(sequence: .max),
        .flush(sequence: 12),
        .flushAck(sequence: 12, status: 28),
        .ping,
        .pingAck,
        .bitmapPage(index: 3, bytes: bytes(4096, seed: 7)),
        .bitmapDone(pages: 4),
        .syncStart(sourceIsSender: true, totalBlocks: 123_456, full: false),
        .syncStart(sourceIsSender: false, totalBlocks: 0, full: true),
        .syncData(offset: 1 << 40, payload: bytes(4096, seed: 3)),
        .syncAck(offset: 1 << 40, length: 4096, status: 0),
        .syncDone(blocks: 99),
        .syncPause(paused: false),
        .resyncRequest(senderIsSource: true, full: false),
        .verifyNotice(running: false, blocks: 3),
        .dataRequest(id: 1, offset: 0, length: 4096),
        .dataReply(id: 1, status: 0, payload: ByteBuffer(bytes: [UInt8](repeating: 7, count: 4096))),
        .checksumRequest(offset: 0, length: 65536, algorithm: "crc32c"),
        .checksumReply(offset: 0, length: 65536, digest: [1, 2, 3, 4]),
        .roleRequest(primary: true),
        .roleReply(granted: false, reason: "alpha is Primary"),
        .roleReply(granted: true, reason: ""),
        .fenceRequest(action: FenceAction.outdate),
        .fenceReply(code: 4, reason: "outdated"),
        .error(reason: "disk failed"),
    ]

    static func encoded(_ message: PeerMessage) -> ByteBuffer {
        var buffer = ByteBuffer()
        message.encode(into: &buffer)
        return buffer
    }

    static func frame(type: UInt16, flags: UInt16 = 0, payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(PeerWire.magic)
        buffer.writeInteger(type)
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }
}

extension Array where Element == UInt8 {
    static func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        Swift.withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    static func string(_ text: String) -> [UInt8] {
        be(UInt16(text.utf8.count)) + Array(text.utf8)
    }
}
