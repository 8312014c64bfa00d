import ControlProtocol
import Dispatch
import NBDProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerProtocol
import RepdCore
import RepdEngine
import RepdNet
import RepdStorage
import RepdSystem

/// What the driver keeps next to the engine, under the same lock: who waits for which answer.
struct DriverState {
    var engine: Engine
    /// The disk the engine's I/O goes to; nil while Diskless.
    var backing: BackingDisk?
    /// The disk the engine let go of last, while requests issued to it are still out (an attach
    /// waits for them: a late write of the old disk must not land after the new disk's resync).
    weak var retired: BackingDisk?
    var promises: [ClientRequestID: WaitingRequest] = [:]
    var commands: [CommandID: CheckedContinuation<(ok: Bool, message: String), Never>] = [:]
    var connections: [ConnectionID: PeerConnection] = [:]
    var nextRequest: ClientRequestID = 1
    var nextCommand: CommandID = 1
    /// How long requests took (`repd metrics`, status JSON `repd-latency`).
    var latency = LatencyStatistics()
    var replicationSent = SendTimes()
}

/// An application request waiting for the engine's answer.
struct WaitingRequest {
    /// `other`: block status, not counted.
    enum Kind { case read, write, flush, other }
    let promise: EventLoopPromise<NBDOutcome>
    let kind: Kind
    /// Monotonic nanoseconds when the request reached the driver.
    let startedAt: UInt64
}

/// When each replicated write was queued to the peer, by sequence number, until its
/// acknowledgement: a ring indexed by the sequence, no hashing on the write path. A write still
/// unacknowledged after `capacity` later ones loses its sample, nothing else.
struct SendTimes {
    private static let capacity = 8192
    private var slots = [(sequence: UInt64, at: UInt64)](repeating: (.max, 0), count: capacity)

    mutating func sent(_ sequence: UInt64, at time: UInt64) {
        slots[Int(sequence % UInt64(Self.capacity))] = (sequence, time)
    }

    /// When `sequence` was sent, once: nil if unknown or already taken.
    mutating func acknowledged(_ sequence: UInt64) -> UInt64? {
        let index = Int(sequence % UInt64(Self.capacity))
        guard slots[index].sequence == sequence else { return nil }
        slots[index].sequence = .max
        return slots[index].at
    }
}

extension LatencyStatistics {
    mutating func record(_ kind: WaitingRequest.Kind, nanoseconds: UInt64) {
        switch kind {
        case .read: read.record(nanoseconds: nanoseconds)
        case .write: write.record(nanoseconds: nanoseconds)
        case .flush: flush.record(nanoseconds: nanoseconds)
        case .other: break
        }
    }
}

/// An action with what the lock had to look up for it.
enum ResolvedAction {
    case action(Action)
    /// Local I/O, with the disk it was issued for.
    case io(Action, BackingDisk)
    /// The engine let go of this disk.
    case detached(BackingDisk?, DiskFailure?, farewell: MetadataWrite)
    case complete(EventLoopPromise<NBDOutcome>, ClientResult)
    case reply(CheckedContinuation<(ok: Bool, message: String), Never>, Bool, String)
    /// Queued on the connection under the lock (so the engine's order is the wire's); `sent`
    /// completes once it is written.
    case send(PeerConnection, sent: EventLoopFuture<Void>, reportSent: UInt64?)
    case close(PeerConnection, reason: String)
    case probe(PeerConnection)
    case standAlone(PeerConnection?, reason: String)
}

/// The driver: feeds events to the engine under the lock and carries out the actions it returns
/// without the lock. Local data I/O runs inline (cached reads, small writes) or on the thread pool,
/// metadata writes on one serial queue, sends on the connection's event loop. Results come back as
/// events; completions found while carrying out actions are fed in the same loop, not recursively.
extension Resource {
    /// Feeds an event (and those its actions produce inline) to the engine.
    /// - Parameter disk: with `.attachDisk`: the disk the engine's I/O goes to if it takes it.
    func feed(_ first: Event, registering promise: (ClientRequestID, EventLoopPromise<NBDOutcome>, WaitingRequest.Kind)? = nil,
              attaching disk: BackingDisk? = nil) {
        var queue: [Event] = [first]
        var index = 0
        var registration = promise
        var attaching = disk
        while index < queue.count {
            let event = queue[index]
            index += 1
            let resolved = state.withLockedValue { s -> [ResolvedAction] in
                if let (id, promise, kind) = registration {
                    s.promises[id] = WaitingRequest(promise: promise, kind: kind, startedAt: ProcessSupport.monotonicNanoseconds())
                    registration = nil
                }
                switch event {
                case .peerMessage(_, .writeAck(let sequence, _)), .peerMessage(_, .receiveAck(let sequence)):
                    if let sent = s.replicationSent.acknowledged(sequence) {
                        s.latency.replication.record(nanoseconds: ProcessSupport.monotonicNanoseconds() &- sent)
                    }
                default: break
                }
                guard let disk = attaching else { return Self.resolve(s.engine.handle(event), &s) }
                attaching = nil
                // The disk is in place before the engine's first I/O to it, and gone again if it refuses.
                if s.backing == nil { s.backing = disk }
                let actions = s.engine.handle(event)
                if !s.engine.diskAttached && s.backing === disk { s.backing = nil }
                return Self.resolve(actions, &s)
            }
            execute(resolved, followUps: &queue)
        }
    }

    /// Looks up, under the lock, the promise, continuation or connection an action names.
    static func resolve(_ actions: [Action], _ s: inout DriverState) -> [ResolvedAction] {
        var resolved: [ResolvedAction] = []
        resolved.reserveCapacity(actions.count)
        for action in actions {
            switch action {
            case .complete(let id, let result):
                if let waiting = s.promises.removeValue(forKey: id) {
                    s.latency.record(waiting.kind, nanoseconds: ProcessSupport.monotonicNanoseconds() &- waiting.startedAt)
                    resolved.append(.complete(waiting.promise, result))
                }
            case .reply(let id, let ok, let message):
                if let continuation = s.commands.removeValue(forKey: id) { resolved.append(.reply(continuation, ok, message)) }
            case .send(let id, let message, let reportSent):
                if case .write(let write) = message { s.replicationSent.sent(write.sequence, at: ProcessSupport.monotonicNanoseconds()) }
                if let connection = s.connections[id] {
                    resolved.append(.send(connection, sent: connection.enqueue(message), reportSent: reportSent))
                }
            case .dropConnection(let id, let reason):
                if let connection = s.connections[id] { resolved.append(.close(connection, reason: reason)) }
            case .probePeer(let id):
                if let connection = s.connections[id] { resolved.append(.probe(connection)) }
            case .goStandAlone(let reason):
                resolved.append(.standAlone(s.engine.session.flatMap { s.connections[$0.connection] }, reason: reason))
            case .readLocal, .writeLocal, .syncLocal, .persist:
                // Without a disk the engine issues no I/O; if it did, `perform` fails it.
                resolved.append(s.backing.map { .io(action, $0) } ?? .action(action))
            case .diskDetached(let failure, let farewell):
                resolved.append(.detached(s.backing, failure, farewell: farewell))
                s.retired = s.backing
                s.backing = nil
            default:
                resolved.append(.action(action))
            }
        }
        return resolved
    }

    func execute(_ actions: [ResolvedAction], followUps: inout [Event]) {
        // The last message sent on each connection in this batch: a close waits for it to be written.
        var lastSent: [ConnectionID: EventLoopFuture<Void>] = [:]
        for resolved in actions {
            switch resolved {
            case .complete(let promise, let result):
                complete(promise, result)
            case .reply(let continuation, let ok, let message):
                continuation.resume(returning: (ok, message))
            case .send(let connection, let sent, let reportSent):
                connection.drain()
                lastSent[connection.id] = sent
                if let sequence = reportSent {
                    let id = connection.id
                    sent.whenComplete { _ in self.feed(.peerSent(id, sequence: sequence)) }
                }
            case .probe(let connection):
                connection.probe()
            case .close(let connection, let reason):
                logger.warning("closing the connection to the peer: \(reason)")
                Self.afterSends(lastSent[connection.id], on: connection) { connection.close() }
            case .standAlone(let connection, let reason):
                // The peer learns why (the error message goes first), then the link stays down.
                let link = self.link
                if let connection {
                    Self.afterSends(lastSent[connection.id], on: connection) { link?.goStandAlone(reason: reason) }
                } else {
                    link?.goStandAlone(reason: reason)
                }
            case .action(let action):
                perform(action, followUps: &followUps)
            case .io(let action, let disk):
                perform(action, on: disk, followUps: &followUps)
            case .detached(let disk, let failure, let farewell):
                diskDetached(disk, failure, farewell: farewell)
            }
        }
    }

    /// Runs `body` once `sent` (if any) is written, else after what is queued on the connection's loop.
    static func afterSends(_ sent: EventLoopFuture<Void>?, on connection: PeerConnection, _ body: @escaping @Sendable () -> Void) {
        if let sent {
            sent.whenComplete { _ in body() }
        } else {
            connection.afterQueued(body)
        }
    }

    /// Local I/O on the disk it was issued for.
    private func perform(_ action: Action, on backing: BackingDisk, followUps: inout [Event]) {
        let disk = backing.data
        switch action {
        case .readLocal(let token, let range, let kind):
            if kind == .data, let buffer = disk.readIfCached(offset: range.lowerBound, count: range.count) {
                // In the page cache: answered here, without a trip through the thread pool.
                followUps.append(.readDone(token, .success(ReadOutcome(data: buffer))))
            } else {
                threadPool.submit { _ in self.feed(.readDone(token, backing.data.perform(kind, range: range))) }
            }
        case .writeLocal(let token, let write):
            if LocalDisk.writesInline(write) {
                followUps.append(.writeDone(token, disk.perform(write)))
            } else {
                threadPool.submit { state in
                    let failure = state == .active ? backing.data.perform(write) : IOFailure(.shutdown, "thread pool stopped")
                    self.feed(.writeDone(token, failure))
                }
            }
        case .syncLocal(let token):
            threadPool.submit { _ in self.feed(.syncDone(token, backing.data.sync())) }
        case .persist(let token, let write):
            metadataQueue.async {
                let failure = write.syncDataFirst ? backing.data.sync() ?? Self.write(write, to: backing.metadata) : Self.write(write, to: backing.metadata)
                self.feed(.persisted(token, failure))
            }
        default:
            perform(action, followUps: &followUps)
        }
    }

    private func perform(_ action: Action, followUps: inout [Event]) {
        let noDisk = IOFailure(.io, "no disk is attached")
        switch action {
        case .readLocal(let token, _, _):
            followUps.append(.readDone(token, .failure(noDisk)))
        case .writeLocal(let token, _):
            followUps.append(.writeDone(token, noDisk))
        case .syncLocal(let token):
            followUps.append(.syncDone(token, noDisk))
        case .persist(let token, _):
            followUps.append(.persisted(token, noDisk))
        case .resumeConnecting:
            link?.connect()
        case .runHandler(let token, let name, let environment):
            runHandler(token, name: name, environment: environment)
        case .roleChanged(let role):
            attachment.follow(primary: role == .primary)
        case .exportSizeChanged(let size):
            // The device's own connection accepts the new size before the kernel learns it.
            nbd?.grewOwnDevice(to: size)
            attachment.resize(to: size)
        case .log(let level, let message):
            switch level {
            case .info: logger.info("\(message)")
            case .warning: logger.warning("\(message)")
            case .error: logger.error("\(message)")
            }
        case .complete, .reply, .send, .dropConnection, .probePeer, .goStandAlone, .diskDetached:
            break // resolved under the lock
        }
    }

    private func complete(_ promise: EventLoopPromise<NBDOutcome>, _ result: ClientResult) {
        switch result {
        case .done: promise.succeed(.done)
        case .data(let buffer): promise.succeed(.data(buffer))
        case .extents(let runs):
            let holeFlags: UInt32 = NBD.stateHole | NBD.stateZero
            promise.succeed(.extents(runs.map { (length: UInt32(clamping: $0.length), flags: $0.hole ? holeFlags : 0) }))
        case .failed(let error, let message):
            promise.fail(NBDFailure(Self.nbdError(error), message))
        }
    }

    static func nbdError(_ error: ClientError) -> NBDError {
        switch error {
        case .io: .io
        case .permission: .permission
        case .noSpace: .noSpace
        case .invalid: .invalid
        case .notSupported: .notSupported
        case .shutdown: .shutdown
        }
    }

    /// Writes metadata in the order `MetadataWrite` documents; stops at the first failure.
    static func write(_ write: MetadataWrite, to store: MetadataStore) -> IOFailure? {
        do throws(SystemError) {
            for page in write.bitmapPages { try store.writeBitmapPage(index: page.index, bytes: page.bytes) }
            if write.syncBitmap { try store.sync() }
            for entry in write.activityLog { try store.writeActivityLog(entry.transaction, ringSlot: entry.ringSlot) }
            if let superblock = write.superblock { try store.writeSuperblock(superblock) }
            return nil
        } catch {
            return IOFailure(.io, "\(error)")
        }
    }

    /// Runs a configured handler in the background, bounded in time; its result comes back as an event.
    private func runHandler(_ token: IOToken, name: String, environment: [String: String]) {
        guard let command = config.handlers[name] else {
            feed(.handlerFinished(token, .failed("not configured")))
            return
        }
        let logPath = run.logFile
        logger.info("running the \(name) handler: \(command)")
        DispatchQueue.global().async {
            let result = HandlerRunner.run(command: command, environment: environment, logPath: logPath, timeoutSeconds: Self.handlerTimeoutSeconds)
            switch result {
            case .exited(let status): self.feed(.handlerFinished(token, .exited(status)))
            default: self.feed(.handlerFinished(token, .failed("\(result)")))
            }
        }
    }

    static let handlerTimeoutSeconds = 60

    /// Runs a command through the engine and waits for its answer.
    func command(_ command: OperatorCommand) async -> (ok: Bool, message: String) {
        await ask { .command($0, command) }
    }

    /// Feeds the event `make` builds around a fresh command id and waits for the engine's reply.
    func ask(attaching disk: BackingDisk? = nil, _ make: (CommandID) -> Event) async -> (ok: Bool, message: String) {
        await withCheckedContinuation { continuation in
            let id = state.withLockedValue { s -> CommandID in
                let id = s.nextCommand
                s.nextCommand += 1
                s.commands[id] = continuation
                return id
            }
            feed(make(id), attaching: disk)
        }
    }
}
