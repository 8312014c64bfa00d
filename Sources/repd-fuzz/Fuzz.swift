#if canImport(Glibc)
import Glibc
#endif
import NBDProtocol
import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine

// repd-fuzz: what a hostile NBD client or replication peer can send, fed to the code that reads it.
//
// Built with `swift build --sanitize=fuzzer` it is a libFuzzer binary (libFuzzer's main drives
// LLVMFuzzerTestOneInput, coverage-guided). Built normally, `repd_fuzz_main` runs a seeded mutation
// fuzzer of its own over the same entry point for a bounded number of inputs. The first byte of
// an input picks the target: even, the NBD server (negotiation, then requests); odd, the peer link
// (frame decoder, handshake, then the engine of a connected Secondary).

@_cdecl("LLVMFuzzerTestOneInput")
public func repdFuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let selector = bytes.first else { return 0 }
    let input = ByteBuffer(bytes: bytes.dropFirst())
    if selector & 1 == 0 { FuzzTargets.nbd(input) } else { FuzzTargets.peer(input) }
    return 0
}

enum FuzzTargets {
    static let export = NBDExportInfo(name: "r0", description: "fuzz", size: 64 << 20,
                                      flags: [.sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .sendFastZero, .sendCache, .sendDF])

    /// A client's bytes: the handshake first; what follows it, as requests with their payloads.
    static func nbd(_ input: ByteBuffer) {
        var input = input
        // STARTTLS is offered; the fuzzer's bytes after it stand for what TLS would carry.
        var negotiation = NBDNegotiation(exports: [export], tls: .allow)
        var session: NBDSession?
        var steps = 0
        while steps < 1000, session == nil, let action = negotiation.process(&input) {
            steps += 1
            switch action {
            case .transmit(_, let established): session = established
            case .sendAndClose: return
            case .send, .startTLS: continue
            }
        }
        guard let session else { return }
        while steps < 10_000 {
            steps += 1
            guard let request = try? NBDRequest.decodeHeader(&input) else { return }
            _ = request.validate(in: session)
            if request.hasPayload {
                guard input.readableBytes >= Int(min(request.length, 1 << 20)) else { return }
                input.moveReaderIndex(forwardBy: Int(min(request.length, 1 << 20)))
            }
        }
    }

    /// A peer's bytes: frames, a handshake, then every message into the engine of a connected
    /// Secondary (its actions' I/O completes at once).
    static func peer(_ input: ByteBuffer) {
        var input = input
        var decoder = PeerFrameDecoder()
        var handshake = PeerHandshake(
            .init(resource: "r0", localNode: "beta", peerNode: "alpha", sharedSecret: nil, algorithm: nil, nonce: 1,
                  challenge: Array(repeating: 7, count: 32)),
            mac: { _, _, _ in Array(repeating: 0, count: 32) })
        _ = handshake.start()
        var engine = connectedSecondary()
        var messages = 0
        while messages < 2000, let message = (try? decoder.decode(buffer: &input)) ?? nil {
            messages += 1
            _ = handshake.receive(message)
            var pending = engine.handle(.peerMessage(1, message))
            var rounds = 0
            while !pending.isEmpty && rounds < 50 {
                rounds += 1
                pending = pending.flatMap { complete($0, &engine) }
            }
        }
    }

    static func connectedSecondary() -> Engine {
        let size: UInt64 = 64 << 20
        let layout = try! MetadataLayout.external(backingSize: size, metaDeviceSize: nil, index: nil)
        var sb = Superblock(layout: layout, resourceName: "r0", nodeName: "beta", deviceUUID: 1, createdAt: 0)
        sb.generation = GenerationIdentifiers(current: 0x1234)
        sb.flags = [.consistent, .wasUpToDate]
        var configuration = EngineConfiguration(resource: "r0", node: "beta", peerNode: "alpha", usableSize: size)
        configuration.activityLogExtents = 16
        var engine = Engine(configuration: configuration, superblock: sb, bitmap: DirtyBitmap(blockCount: Int(size / 4096)),
                            activityLogReplay: ActivityLog.replay([], slotCount: 16), seed: 1)
        _ = engine.start(now: 1, unixTime: 1)
        _ = engine.handle(.peerConnected(1, peerNode: "alpha", localResolves: false))
        return engine
    }

    /// Completes an action's I/O at once (reads return zeroes) and returns what follows.
    static func complete(_ action: Action, _ engine: inout Engine) -> [Action] {
        switch action {
        case .readLocal(let token, let range, let kind):
            let count = min(range.count, 32 << 20)
            switch kind {
            case .digests(let algorithm):
                let digests = Array(repeating: [UInt8](repeating: 0, count: EngineConfiguration.digestLength(algorithm)), count: count / 4096)
                return engine.handle(.readDone(token, .success(ReadOutcome(digests: digests))))
            default:
                return engine.handle(.readDone(token, .success(ReadOutcome(data: ByteBuffer(repeating: 0, count: count)))))
            }
        case .writeLocal(let token, _): return engine.handle(.writeDone(token, nil))
        case .syncLocal(let token): return engine.handle(.syncDone(token, nil))
        case .persist(let token, _): return engine.handle(.persisted(token, nil))
        case .runHandler(let token, _, _): return engine.handle(.handlerFinished(token, .exited(0)))
        default: return []
        }
    }
}

/// Without libFuzzer: `repd-fuzz [--runs N] [--seed S]` mutates valid inputs of both targets.
@_cdecl("repd_fuzz_main")
public func repdFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var arguments: [String] = []
    for index in 1..<Int(argc) { if let p = argv[index] { arguments.append(String(cString: p)) } }
    func value(_ name: String, _ fallback: UInt64) -> UInt64 {
        guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = UInt64(arguments[i + 1]) else { return fallback }
        return v
    }
    if let i = arguments.firstIndex(of: "--write-seeds"), i + 1 < arguments.count {
        // The valid inputs, one file each: a starting corpus for libFuzzer.
        for (index, seedInput) in MutationFuzzer.seeds().enumerated() {
            let path = "\(arguments[i + 1])/seed-\(index)"
            guard let file = fopen(path, "wb") else { print("repd-fuzz: cannot write \(path)"); return 1 }
            _ = seedInput.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
        return 0
    }
    let runs = value("--runs", 20_000)
    let seed = value("--seed", 1)
    let executed = MutationFuzzer.run(runs: runs, seed: seed)
    print("repd-fuzz: \(executed) inputs (seed \(seed)), no crash")
    return 0
}
