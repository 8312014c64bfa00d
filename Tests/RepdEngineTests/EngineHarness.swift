import NIOCore
import PeerProtocol
import RepdCore
import RepdEngine
import XCTest

/// An engine on fresh metadata, fed events by a test, with the actions it returns kept for
/// inspection. Metadata writes complete at once unless the test holds them.
struct EngineHarness {
    var engine: Engine
    var actions: [Action] = []
    var now: UInt64 = 1_000_000_000
    /// Metadata writes not completed yet (when `holdMetadata`).
    var heldMetadata: [IOToken] = []
    var holdMetadata = false
    static let size: UInt64 = 64 << 20

    init(node: String = "alpha", peer: String? = "beta", protocol replication: ReplicationMode = .C,
         configure: (inout EngineConfiguration) -> Void = { _ in }) {
        let layout = try! MetadataLayout.external(backingSize: Self.size, metaDeviceSize: nil, index: nil)
        let superblock = Superblock(layout: layout, resourceName: "r0", nodeName: node, deviceUUID: 1, createdAt: 0)
        var configuration = EngineConfiguration(resource: "r0", node: node, peerNode: peer, usableSize: Self.size)
        configuration.replication = replication
        configuration.activityLogExtents = 16
        configure(&configuration)
        engine = Engine(configuration: configuration, superblock: superblock,
                        bitmap: DirtyBitmap(blockCount: Int(Self.size / Geometry.blockSize)),
                        activityLogReplay: ActivityLog.replay([], slotCount: 16), seed: 99)
        let started = engine.start(now: now, unixTime: 1)
        completeMetadata(in: started)
    }

    /// Feeds an event; metadata writes it asks for complete right away (unless held).
    @discardableResult
    mutating func feed(_ event: Event) -> [Action] {
        let produced = engine.handle(event)
        actions += produced
        completeMetadata(in: produced)
        return produced
    }

    private mutating func completeMetadata(in produced: [Action]) {
        var tokens = produced.compactMap { if case .persist(let token, _) = $0 { return token } else { return nil } }
        while !tokens.isEmpty {
            let token = tokens.removeFirst()
            if holdMetadata {
                heldMetadata.append(token)
                continue
            }
            let more = engine.handle(.persisted(token, nil))
            actions += more
            tokens += more.compactMap { if case .persist(let token, _) = $0 { return token } else { return nil } }
        }
    }

    mutating func releaseMetadata() {
        let held = heldMetadata
        heldMetadata.removeAll()
        for token in held { feed(.persisted(token, nil)) }
    }

    mutating func tick(_ milliseconds: UInt64 = 100) {
        now += milliseconds * 1_000_000
        feed(.tick(now: now, unixTime: now / 1_000_000_000))
    }

    /// Drops what was recorded so far.
    mutating func clear() { actions.removeAll() }

    // MARK: what the engine asked for

    var sent: [PeerMessage] {
        actions.compactMap { if case .send(_, let message, _) = $0 { return message } else { return nil } }
    }

    var completions: [(ClientRequestID, ClientResult)] {
        actions.compactMap { if case .complete(let id, let result) = $0 { return (id, result) } else { return nil } }
    }

    var localWrites: [(IOToken, LocalWrite)] {
        actions.compactMap { if case .writeLocal(let token, let write) = $0 { return (token, write) } else { return nil } }
    }

    var localReads: [(IOToken, Range<UInt64>, LocalReadKind)] {
        actions.compactMap { if case .readLocal(let token, let range, let kind) = $0 { return (token, range, kind) } else { return nil } }
    }

    var syncs: [IOToken] {
        actions.compactMap { if case .syncLocal(let token) = $0 { return token } else { return nil } }
    }

    func completed(_ id: ClientRequestID) -> ClientResult? { completions.first { $0.0 == id }?.1 }

    func isDone(_ id: ClientRequestID) -> Bool {
        if case .done? = completed(id) { return true }
        return false
    }

    // MARK: getting into a state

    static let connection: ConnectionID = 7

    /// The peer's report as a connected peer with `disk` and `role` would send it.
    func peerReport(role: Role = .secondary, disk: DiskState = .upToDate, generation: GenerationIdentifiers? = nil) -> PeerStateReport {
        PeerStateReport(role: role, disk: disk, usableSize: Self.size, generation: generation ?? engine.metadata.superblock.generation,
                        outOfSyncBlocks: 0, flags: disk >= .consistent ? [.consistent, .wasUpToDate] : [])
    }

    /// Primary, UpToDate, connected to an UpToDate Secondary with the same generation (in sync).
    mutating func connectedPrimary() {
        feed(.command(1, .newCurrentUUID(clearBitmap: false)))
        feed(.command(2, .primary(force: true)))
        let generation = engine.metadata.superblock.generation
        feed(.peerConnected(Self.connection, peerNode: "beta", localResolves: true))
        feed(.peerMessage(Self.connection, .state(peerReport(generation: generation))))
        clear()
    }

    /// A client write of one block that the local disk and the peer both complete (a connected
    /// Primary); fails the test if it is not then done.
    mutating func acknowledgedWrite(_ id: ClientRequestID, block: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        clear()
        feed(.clientWrite(id, Self.clientWrite(block: block)))
        guard case .write(let w)? = sent.first, let (token, _) = localWrites.first else {
            return XCTFail("the write went neither to the peer nor to the disk: \(actions)", file: file, line: line)
        }
        feed(.writeDone(token, nil))
        feed(.peerMessage(Self.connection, .writeAck(sequence: w.sequence, status: 0)))
        XCTAssertTrue(isDone(id), file: file, line: line)
    }

    /// A replicated write from the peer, as it arrives.
    static func peerWrite(_ sequence: UInt64, block: UInt64, tag: UInt8 = 1) -> PeerMessage {
        .write(PeerWrite(sequence: sequence, offset: block * Geometry.blockSize, data: ByteBuffer(repeating: tag, count: Int(Geometry.blockSize))))
    }

    static func clientWrite(block: UInt64, blocks: UInt64 = 1, fua: Bool = false) -> ClientWrite {
        ClientWrite(range: block * Geometry.blockSize..<(block + blocks) * Geometry.blockSize, kind: .data, fua: fua,
                    payload: ByteBuffer(repeating: 0xAB, count: Int(blocks * Geometry.blockSize)))
    }
}
