import NBDProtocol
import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine

/// A small seeded mutation fuzzer (no coverage): valid inputs of both targets, then bytes flipped,
/// integers replaced by boundary values, runs cut, duplicated and inserted. For builds without
/// libFuzzer (`swift test`); the libFuzzer build finds more, given time.
enum MutationFuzzer {
    /// Runs `runs` inputs; returns how many.
    static func run(runs: UInt64, seed: UInt64) -> UInt64 {
        var random = SplitMix64(seed: seed)
        let corpus = seeds()
        for _ in 0..<runs {
            var input = corpus[Int(random.next() % UInt64(corpus.count))]
            let mutations = 1 + Int(random.next() % 8)
            for _ in 0..<mutations { mutate(&input, &random) }
            input.withUnsafeBufferPointer { p in _ = repdFuzzOneInput(p.baseAddress ?? UnsafePointer(bitPattern: 1)!, p.count) }
        }
        return runs
    }

    static let boundaries: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
                                      0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 4096, 1 << 20, 32 << 20, 64 << 20]

    static func mutate(_ input: inout [UInt8], _ random: inout SplitMix64) {
        guard input.count > 1 else { input.append(UInt8(truncatingIfNeeded: random.next())); return }
        // Byte 0 selects the target; mutations start after it.
        let at = 1 + Int(random.next() % UInt64(input.count - 1))
        switch random.next() % 6 {
        case 0: input[at] ^= UInt8(1 << (random.next() % 8))
        case 1: input[at] = UInt8(truncatingIfNeeded: random.next())
        case 2:
            let value = boundaries[Int(random.next() % UInt64(boundaries.count))]
            let width = [1, 2, 4, 8][Int(random.next() % 4)]
            for i in 0..<width where at + i < input.count { input[at + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - i))) }
        case 3: input.removeSubrange(at..<min(input.count, at + 1 + Int(random.next() % 64)))
        case 4:
            let end = min(input.count, at + 1 + Int(random.next() % 64))
            input.insert(contentsOf: input[at..<end], at: at)
        default:
            input.insert(contentsOf: (0..<Int(random.next() % 16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
        }
    }

    /// Valid inputs: a client handshake with requests; a peer's messages of every kind.
    static func seeds() -> [[UInt8]] {
        var nbd = ByteBuffer()
        nbd.writeInteger(NBD.clientFlagFixedNewstyle | NBD.clientFlagNoZeroes)
        // NBD_OPT_STRUCTURED_REPLY (8), then NBD_OPT_GO (7) for "r0" with no info requests.
        nbd.writeInteger(NBD.optionMagic); nbd.writeInteger(UInt32(8)); nbd.writeInteger(UInt32(0))
        nbd.writeInteger(NBD.optionMagic); nbd.writeInteger(UInt32(7)); nbd.writeInteger(UInt32(8))
        nbd.writeInteger(UInt32(2)); nbd.writeString("r0"); nbd.writeInteger(UInt16(0))
        for (command, length) in [(NBD.Command.read, UInt32(4096)), (.write, 4096), (.flush, 0), (.trim, 1 << 20), (.blockStatus, 65536)] {
            NBDRequest(command: command, cookie: 1, offset: 4096, length: length).encodeHeader(into: &nbd)
            if command == .write { nbd.writeRepeatingByte(0xAB, count: 4096) }
        }
        var peer = ByteBuffer()
        let report = PeerStateReport(role: .primary, disk: .upToDate, usableSize: 64 << 20, generation: GenerationIdentifiers(current: 0x1234),
                                     outOfSyncBlocks: 3, flags: [.consistent, .wasUpToDate])
        let messages: [PeerMessage] = [
            .hello(PeerHello(resource: "r0", node: "alpha", peer: "beta", nonce: 9, authRequired: false)),
            .state(report),
            .write(PeerWrite(sequence: 1, offset: 8192, data: ByteBuffer(repeating: 1, count: 4096))),
            .write(PeerWrite(sequence: 2, offset: 0, length: 1 << 20, kind: .trim)),
            .flush(sequence: 3),
            .bitmapPage(index: 0, bytes: ByteBuffer(repeating: 0x0F, count: 4096)), .bitmapDone(pages: 1),
            .syncStart(sourceIsSender: true, totalBlocks: 4, full: false),
            .syncData(offset: 16384, payload: ByteBuffer(repeating: 2, count: 4096)),
            .syncAck(offset: 16384, length: 4096, status: 0), .syncDone(blocks: 4),
            .checksumRequest(offset: 0, length: 4096, algorithm: "crc32c"), .checksumReply(offset: 0, length: 4096, digest: [1, 2, 3, 4]),
            .dataRequest(id: 1, offset: 0, length: 8192), .dataReply(id: 1, status: 0, payload: ByteBuffer(repeating: 3, count: 8192)),
            .verifyNotice(running: true, blocks: 16), .syncPause(paused: true), .resyncRequest(senderIsSource: true, full: false),
            .writeAck(sequence: 1, status: 0), .receiveAck(sequence: 1), .flushAck(sequence: 3, status: 0), .ping, .pingAck,
            .error(reason: "test"),
        ]
        for message in messages { message.encode(into: &peer) }
        return [[0] + Array(nbd.readableBytesView), [1] + Array(peer.readableBytesView)]
    }
}
