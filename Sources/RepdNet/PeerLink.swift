import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import PeerProtocol

/// What the replication engine hears from the link.
public protocol PeerLinkDelegate: AnyObject, Sendable {
    /// The one connection to the peer is up and authenticated.
    func peerLinkEstablished(_ connection: PeerConnection, hello: PeerHello)
    /// A message on the established connection (pings are answered by the link itself).
    func peerLinkReceived(_ message: PeerMessage, on connection: PeerConnection)
    /// The established connection is gone.
    func peerLinkLost(_ connection: PeerConnection, reason: String)
    /// A connection attempt was refused (authentication, wrong resource, protocol error).
    func peerLinkRefused(reason: String)
}

/// Settings of the link, from the resource's `net` section.
public struct PeerLinkConfiguration: Sendable {
    public var resource: String
    public var localNode: String
    public var peerNode: String
    public var listenHost: String
    public var listenPort: Int
    public var peerHost: String
    public var peerPort: Int
    public var sharedSecret: [UInt8]?
    public var algorithm: String?
    public var connectInterval: TimeAmount
    public var pingInterval: TimeAmount
    public var pingTimeout: TimeAmount
    public var sendBufferSize: Int
    public var receiveBufferSize: Int
    /// `data-integrity-alg`: the digest this node adds to the data of each replicated write it
    /// sends (the receiver checks any digest it gets, whatever its own setting).
    public var dataIntegrityAlgorithm: String?
    /// `tls yes`: every connection runs TLS 1.3 first, the peer's certificate checked against the
    /// CA and the peer's node name, then the usual handshake (and cram-hmac, if set) inside it.
    public var tls: TLSSetup.PeerContexts?

    public init(resource: String, localNode: String, peerNode: String, listenHost: String, listenPort: Int, peerHost: String, peerPort: Int,
                sharedSecret: [UInt8]?, algorithm: String?, connectInterval: TimeAmount, pingInterval: TimeAmount, pingTimeout: TimeAmount,
                sendBufferSize: Int, receiveBufferSize: Int) {
        self.resource = resource
        self.localNode = localNode
        self.peerNode = peerNode
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.peerHost = peerHost
        self.peerPort = peerPort
        self.sharedSecret = sharedSecret
        self.algorithm = algorithm
        self.connectInterval = connectInterval
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.sendBufferSize = sendBufferSize
        self.receiveBufferSize = receiveBufferSize
    }

    /// The node whose name sorts first leads: it chooses which connection survives.
    public var isLeader: Bool { localNode < peerNode }
}

/// One TCP connection to the peer.
public final class PeerConnection: Sendable, Hashable, CustomStringConvertible {
    public let channel: any Channel
    public let id: Int
    public let outbound: Bool
    /// `data-integrity-alg`: the wire code of the digest added to outgoing data writes, and the
    /// function that computes it (nil: none added).
    let integrity: (code: UInt8, name: String, digest: @Sendable (String, ByteBuffer) -> [UInt8])?
    /// A flush is queued on the event loop: messages written meanwhile go out with it.
    private let flushPending: NIOLoopBoundBox<Bool>
    /// Messages queued and not yet handed to the channel, in the order `enqueue` was called.
    private let outbox = NIOLockedValueBox<[(PeerMessage, EventLoopPromise<Void>)]>([])

    init(channel: any Channel, id: Int, outbound: Bool,
         integrity: (code: UInt8, name: String, digest: @Sendable (String, ByteBuffer) -> [UInt8])? = nil) {
        self.channel = channel
        self.id = id
        self.outbound = outbound
        self.integrity = integrity
        self.flushPending = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
    }

    /// Queues a message; messages go out in the order of the `enqueue` calls, whatever thread makes
    /// them, once `drain()` runs (a caller that holds a lock while enqueueing fixes the order under
    /// that lock). Writing directly from the event loop while other threads hop onto it would let
    /// a later message overtake an earlier one: the dual-primary conflict rule depends on a write
    /// never being overtaken by the acknowledgement that follows it (Docs/DualPrimary.md).
    @discardableResult
    public func enqueue(_ message: PeerMessage) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        outbox.withLockedValue { $0.append((message, promise)) }
        return promise.futureResult
    }

    /// Hands every queued message to the channel, in order (on the event loop; from another thread
    /// it hops there).
    public func drain() {
        let loop = channel.eventLoop
        if loop.inEventLoop {
            drainOnLoop()
        } else {
            loop.execute { self.drainOnLoop() }
        }
    }

    /// Queues a message and drains: messages are sent in the order of the calls.
    @discardableResult
    public func send(_ message: PeerMessage) -> EventLoopFuture<Void> {
        let sent = enqueue(message)
        drain()
        return sent
    }

    /// Messages handed over in the same turn of the event loop share one flush (one system call),
    /// so a burst of writes, acks and resync data costs far fewer syscalls than messages.
    private func drainOnLoop() {
        let messages = outbox.withLockedValue { queued -> [(PeerMessage, EventLoopPromise<Void>)] in
            var taken: [(PeerMessage, EventLoopPromise<Void>)] = []
            swap(&taken, &queued)
            return taken
        }
        guard !messages.isEmpty else { return }
        for (message, promise) in messages { channel.write(signed(message), promise: promise) }
        if !flushPending.value {
            flushPending.value = true
            channel.eventLoop.execute {
                self.flushPending.value = false
                self.channel.flush()
            }
        }
    }

    /// A data write with its digest added, when `data-integrity-alg` is set; any other message as it is.
    private func signed(_ message: PeerMessage) -> PeerMessage {
        guard let integrity, case .write(var write) = message, write.kind == .data, let payload = write.payload else { return message }
        write.digest = PeerDigest(algorithm: integrity.code, bytes: integrity.digest(integrity.name, payload))
        return .write(write)
    }

    /// Runs `body` on the event loop once every message queued so far is written out.
    public func afterQueued(_ body: @escaping @Sendable () -> Void) {
        channel.eventLoop.execute {
            self.drainOnLoop()
            self.channel.flush()
            body()
        }
    }

    public func close() {
        channel.close(promise: nil)
    }

    /// Pings the peer now unless a ping is out already; no answer within ping-timeout closes the
    /// connection (the engine asks when a replicated write is late: DRBD's `timeout`).
    public func probe() {
        channel.pipeline.fireUserInboundEventTriggered(PeerConnectionHandler.Probe())
    }

    public var description: String {
        "\(outbound ? "outgoing" : "incoming") connection #\(id) (\(channel.remoteAddress.map { "\($0)" } ?? "?"))"
    }

    public static func == (a: PeerConnection, b: PeerConnection) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// The replication link: listens on this node's address, dials the peer's, authenticates both
/// directions, and keeps exactly one connection (the leader's choice). Reconnects by itself.
public final class PeerLink: Sendable {
    /// The settings; `repd adjust` replaces them for the next connections (`update`).
    public var configuration: PeerLinkConfiguration { configurationBox.withLockedValue { $0 } }
    private let configurationBox: NIOLockedValueBox<PeerLinkConfiguration>
    private let group: any EventLoopGroup
    private let logger: Logger
    private let mac: @Sendable (String, [UInt8], [UInt8]) -> [UInt8]
    private let random: @Sendable () -> UInt64
    /// Computes a digest of data by algorithm name (`data-integrity-alg`).
    let digest: @Sendable (String, ByteBuffer) -> [UInt8]

    struct State {
        var listener: (any Channel)?
        var active: PeerConnection?
        var pending: [Int: PeerConnection] = [:]
        var dialing = false
        var stopped = false
        var nextID = 1
        var dialTask: RepeatedTask?
        var standAlone = false
    }
    private let state = NIOLockedValueBox(State())

    final class WeakDelegate: Sendable {
        private let box: NIOLockedValueBox<(any PeerLinkDelegate)?>
        init(_ d: any PeerLinkDelegate) { box = NIOLockedValueBox(d) }
        var value: (any PeerLinkDelegate)? { box.withLockedValue { $0 } }
        func clear() { box.withLockedValue { $0 = nil } }
    }
    private let delegateRef: WeakDelegate

    /// At most this many connections may be in their handshake at once; more are closed at once.
    static let maximumPending = 16
    /// A connection that has not authenticated within this time is closed.
    static let handshakeTimeout = TimeAmount.seconds(10)

    public init(configuration: PeerLinkConfiguration, group: any EventLoopGroup, logger: Logger, delegate: any PeerLinkDelegate,
                mac: @escaping @Sendable (String, [UInt8], [UInt8]) -> [UInt8], random: @escaping @Sendable () -> UInt64,
                digest: @escaping @Sendable (String, ByteBuffer) -> [UInt8]) {
        self.configurationBox = NIOLockedValueBox(configuration)
        self.digest = digest
        self.group = group
        self.logger = logger
        self.mac = mac
        self.random = random
        self.delegateRef = WeakDelegate(delegate)
    }

    /// New settings for the connections made from now on (the one that is up keeps its own). The
    /// addresses stay: the listener and the dialling are bound to them.
    public func update(_ new: PeerLinkConfiguration) {
        configurationBox.withLockedValue { current in
            var next = new
            next.listenHost = current.listenHost
            next.listenPort = current.listenPort
            next.peerHost = current.peerHost
            next.peerPort = current.peerPort
            next.connectInterval = current.connectInterval
            current = next
        }
    }

    var delegate: (any PeerLinkDelegate)? { delegateRef.value }

    public func start() async throws {
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 16)
            .childChannelInitializer { [self] channel in
                self.setUp(channel: channel, outbound: false)
            }
            .bind(host: configuration.listenHost, port: configuration.listenPort)
            .get()
        state.withLockedValue { $0.listener = listener }
        let loop = group.next()
        let task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: configuration.connectInterval) { [self] _ in
            self.dialIfNeeded()
        }
        state.withLockedValue { $0.dialTask = task }
    }

    public func stop() async {
        let (listener, active, pending, task) = state.withLockedValue { s in
            s.stopped = true
            return (s.listener, s.active, Array(s.pending.values), s.dialTask)
        }
        task?.cancel()
        try? await listener?.close()
        active?.close()
        pending.forEach { $0.close() }
        if let active { try? await active.channel.closeFuture.get() }
        delegateRef.clear()
    }

    public var activeConnection: PeerConnection? { state.withLockedValue { $0.active } }

    /// Drops the current connection (it will be re-established by the dial loop).
    public func dropConnection(reason: String) {
        if let active = state.withLockedValue({ $0.active }) {
            logger.warning("closing the connection to the peer: \(reason)")
            active.close()
        }
    }

    /// Stops connecting and accepting until `connect()`: DRBD's StandAlone.
    public func goStandAlone(reason: String) {
        let active = state.withLockedValue { s -> PeerConnection? in
            s.standAlone = true
            return s.active
        }
        logger.warning("StandAlone: \(reason)")
        if let active { noteLossReason(active, reason); active.close() }
    }

    /// Leaves StandAlone and resumes connecting.
    public func connect() {
        state.withLockedValue { $0.standAlone = false }
        group.next().execute { [self] in self.dialIfNeeded() }
    }

    public var isStandAlone: Bool { state.withLockedValue { $0.standAlone } }

    private func dialIfNeeded() {
        let go = state.withLockedValue { s -> Bool in
            guard !s.stopped, !s.standAlone, s.active == nil, !s.dialing else { return false }
            s.dialing = true
            return true
        }
        guard go else { return }
        ClientBootstrap(group: group)
            .connectTimeout(.seconds(3))
            .channelInitializer { [self] channel in self.setUp(channel: channel, outbound: true) }
            .connect(host: configuration.peerHost, port: configuration.peerPort)
            .whenComplete { [self] result in
                self.state.withLockedValue { $0.dialing = false }
                if case .failure = result {
                    // The peer is not reachable yet; the loop tries again after connect-int.
                }
            }
    }

    private func setUp(channel: any Channel, outbound: Bool) -> EventLoopFuture<Void> {
        let connection: PeerConnection? = state.withLockedValue { s in
            guard !s.stopped, !s.standAlone, s.pending.count < Self.maximumPending else { return nil }
            let integrity = configuration.dataIntegrityAlgorithm.flatMap { name in
                PeerDigest.code(name).map { (code: $0, name: name, digest: digest) }
            }
            let c = PeerConnection(channel: channel, id: s.nextID, outbound: outbound, integrity: integrity)
            s.nextID += 1
            s.pending[c.id] = c
            return c
        }
        guard let connection else {
            logger.warning("refusing a replication connection from \(channel.remoteAddress.map { "\($0)" } ?? "?"): too many connections in handshake")
            return channel.close()
        }
        var challenge: [UInt8] = []
        for _ in 0..<4 { withUnsafeBytes(of: random()) { challenge += $0 } }
        let handshake = PeerHandshake(
            PeerHandshake.Configuration(
                resource: configuration.resource, localNode: configuration.localNode, peerNode: configuration.peerNode,
                sharedSecret: configuration.sharedSecret, algorithm: configuration.algorithm, nonce: random(), challenge: challenge),
            mac: mac)
        let diagnosis = configuration.tls.map { _ in TLSSetup.Diagnosis() }
        let handler = PeerConnectionHandler(link: self, connection: connection, handshake: handshake, tls: diagnosis)
        channel.closeFuture.whenComplete { [self] _ in self.closed(connection) }
        if configuration.sendBufferSize > 0 {
            _ = channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(configuration.sendBufferSize))
        }
        if configuration.receiveBufferSize > 0 {
            _ = channel.setOption(ChannelOptions.socketOption(.so_rcvbuf), value: SocketOptionValue(configuration.receiveBufferSize))
        }
        _ = channel.setOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        // Replicated writes and resync data come in frames of up to 1 MiB and more: read them in
        // large pieces (fewer reads, fewer copies into the decoder's buffer).
        _ = channel.setOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 2 << 20))
        _ = channel.setOption(ChannelOptions.maxMessagesPerRead, value: 16)
        let tls = configuration.tls
        let trust = "this node's tls-ca"
        return channel.eventLoop.makeCompletedFuture {
            if let tls, let diagnosis {
                // The dialler names no server (no SNI): the peer's name is checked by the handler
                // once the handshake completed, the same way on both sides.
                let ssl: NIOSSLHandler = outbound
                    ? try NIOSSLClientHandler(context: tls.client, serverHostname: nil, verificationCallback: diagnosis.callback(trust: trust))
                    : try NIOSSLServerHandler(context: tls.server, verificationCallback: diagnosis.callback(trust: trust))
                try channel.pipeline.syncOperations.addHandler(ssl)
            }
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(PeerFrameDecoder()),
                PeerFrameEncoder(),
                handler,
            ])
        }
    }

    // MARK: events from connection handlers (on the connection's event loop)

    func handshakeFailed(_ connection: PeerConnection, reason: String) {
        logger.error("replication \(connection): refused: \(reason)")
        delegate?.peerLinkRefused(reason: reason)
    }

    /// The handshake finished on `connection`. The leader picks it (if it has none) and says
    /// so with `chosen`; the follower waits for `chosen`.
    func authenticated(_ connection: PeerConnection, hello: PeerHello) {
        guard configuration.isLeader else { return }
        let chosen = state.withLockedValue { s -> Bool in
            guard s.active == nil, !s.stopped else { return false }
            s.active = connection
            s.pending[connection.id] = nil
            return true
        }
        if chosen {
            connection.send(.chosen)
            logger.info("connected to peer \(configuration.peerNode) (\(connection)); this node leads the connection choice")
            delegate?.peerLinkEstablished(connection, hello: hello)
        } else {
            logger.info("closing a second connection to the peer (\(connection)): one is already established")
            connection.close()
        }
    }

    /// The follower received `chosen` on `connection`.
    func chosen(_ connection: PeerConnection, hello: PeerHello) {
        let others = state.withLockedValue { s -> [PeerConnection]? in
            guard !s.stopped else { return nil }
            if let current = s.active, current != connection { return nil }
            s.active = connection
            s.pending[connection.id] = nil
            let others = Array(s.pending.values)
            return others
        }
        guard let others else {
            connection.close()
            return
        }
        for other in others where other.outbound { other.close() }
        logger.info("connected to peer \(configuration.peerNode) (\(connection)); chosen by the peer")
        delegate?.peerLinkEstablished(connection, hello: hello)
    }

    func received(_ message: PeerMessage, on connection: PeerConnection) {
        guard state.withLockedValue({ $0.active === connection }) else { return }
        delegate?.peerLinkReceived(message, on: connection)
    }

    private func closed(_ connection: PeerConnection) {
        let wasActive = state.withLockedValue { s -> Bool in
            s.pending[connection.id] = nil
            if s.active === connection {
                s.active = nil
                return true
            }
            return false
        }
        if wasActive {
            delegate?.peerLinkLost(connection, reason: connectionLossReason(connection))
            // Try again right away rather than waiting a whole connect-int.
            group.next().execute { [self] in self.dialIfNeeded() }
        }
    }

    private let lossReasons = NIOLockedValueBox<[Int: String]>([:])
    func noteLossReason(_ connection: PeerConnection, _ reason: String) {
        lossReasons.withLockedValue { $0[connection.id] = reason }
    }
    private func connectionLossReason(_ connection: PeerConnection) -> String {
        lossReasons.withLockedValue { $0.removeValue(forKey: connection.id) } ?? "connection closed"
    }

    var pingInterval: TimeAmount { configuration.pingInterval }
    var pingTimeout: TimeAmount { configuration.pingTimeout }
}

/// Runs the handshake on one connection, then passes messages to the link; answers pings and
/// closes the connection when the peer stops answering.
final class PeerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    private let link: PeerLink
    private let connection: PeerConnection
    private var handshake: PeerHandshake
    private var hello: PeerHello?
    private var established = false
    private var active = false
    private var lastReceived = NIODeadline.now()
    private var pingSentAt: NIODeadline?
    private var timer: RepeatedTask?
    private let openedAt = NIODeadline.now()

    /// Set when the connection runs TLS: the handshake waits for TLS and the peer's name.
    private let tls: TLSSetup.Diagnosis?
    /// TLS is up and the certificate names the peer (always true without TLS).
    private var peerVerified: Bool
    /// The connection was refused and is closing: nothing more it sends is read.
    private var refused = false

    init(link: PeerLink, connection: PeerConnection, handshake: PeerHandshake, tls: TLSSetup.Diagnosis?) {
        self.link = link
        self.connection = connection
        self.handshake = handshake
        self.tls = tls
        self.peerVerified = tls == nil
    }

    private func startHandshake(context: ChannelHandlerContext) {
        for message in handshake.start() { context.write(wrapOutboundOut(message), promise: nil) }
        context.flush()
    }

    /// TLS is up: the chain was checked against the CA; the certificate must also name the peer.
    private func tlsEstablished(context: ChannelHandlerContext) {
        let peer = link.configuration.peerNode
        let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
        let names = certificate.map(TLSSetup.certificateNames) ?? []
        guard names.contains(peer) else {
            let shown = names.isEmpty ? "no name" : names.map { "'\($0)'" }.joined(separator: ", ")
            fail(context: context, reason: "TLS: the peer's certificate is issued to \(shown), not to the peer node '\(peer)'", notify: true)
            return
        }
        peerVerified = true
        startHandshake(context: context)
    }

    func channelActive(context: ChannelHandlerContext) {
        if tls == nil { startHandshake(context: context) }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
            loopBound.value.tick(context: ctx.value)
        }
    }

    /// Why a write's data does not match its digest, or nil when it does. The connection is then
    /// closed without writing the data: the sender marks the unacknowledged write out of sync
    /// and the resync after the reconnect repairs the block (DRBD's data-integrity-alg).
    private func integrityMismatch(_ write: PeerWrite) -> String? {
        guard let digest = write.digest, let payload = write.payload else { return nil }
        guard link.digest(digest.name, payload) != digest.bytes else { return nil }
        return "data-integrity-alg \(digest.name): the data of write \(write.sequence) (\(write.length) bytes at offset \(write.offset)) "
            + "does not match its digest: corrupted in flight; dropping the connection (the resync repairs the block)"
    }

    struct Probe {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent, tls != nil, !established {
            return tlsEstablished(context: context)
        }
        guard event is Probe else { return context.fireUserInboundEventTriggered(event) }
        guard active, pingSentAt == nil else { return }
        pingSentAt = .now()
        context.writeAndFlush(wrapOutboundOut(.ping), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    private func tick(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        if !active {
            if now - openedAt > PeerLink.handshakeTimeout {
                link.noteLossReason(connection, "handshake timeout")
                context.close(promise: nil)
            }
            return
        }
        if let sent = pingSentAt {
            if now - sent > link.pingTimeout {
                link.noteLossReason(connection, "the peer did not answer a ping within ping-timeout")
                context.close(promise: nil)
            }
        } else if now - lastReceived > link.pingInterval {
            pingSentAt = now
            context.writeAndFlush(wrapOutboundOut(.ping), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        guard peerVerified else {
            return fail(context: context, reason: "TLS: the peer sent data before its certificate was checked", notify: false)
        }
        let message = unwrapInboundIn(data)
        lastReceived = .now()
        if active {
            // Anything from the peer shows it is alive, not only the answer to our ping (which
            // may queue behind bulk data on a busy link).
            pingSentAt = nil
            switch message {
            case .ping:
                context.writeAndFlush(wrapOutboundOut(.pingAck), promise: nil)
            case .pingAck:
                pingSentAt = nil
            case .error(let reason):
                link.noteLossReason(connection, "the peer closed the connection: \(reason)")
                context.close(promise: nil)
            case .write(let write) where write.digest != nil:
                if let mismatch = integrityMismatch(write) {
                    link.noteLossReason(connection, mismatch)
                    context.close(promise: nil)
                    return
                }
                link.received(message, on: connection)
            default:
                link.received(message, on: connection)
            }
            return
        }
        if established {
            // Follower waiting for the leader's choice.
            if case .chosen = message, let hello {
                active = true
                link.chosen(connection, hello: hello)
            } else if case .error(let reason) = message {
                link.noteLossReason(connection, reason)
                context.close(promise: nil)
            } else {
                fail(context: context, reason: "unexpected \(message.type) before the connection was chosen", notify: true)
            }
            return
        }
        switch handshake.receive(message) {
        case .send(let messages):
            for m in messages { context.write(wrapOutboundOut(m), promise: nil) }
            context.flush()
        case .fail(let reason, let notify):
            fail(context: context, reason: reason, notify: notify)
        case .established(let hello, let messages):
            for m in messages { context.write(wrapOutboundOut(m), promise: nil) }
            context.flush()
            self.hello = hello
            established = true
            if link.configuration.isLeader {
                active = true
                link.authenticated(connection, hello: hello)
            }
        }
    }

    private func fail(context: ChannelHandlerContext, reason: String, notify: Bool) {
        guard !refused else { return }
        refused = true
        link.handshakeFailed(connection, reason: reason)
        if notify {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.error(reason: reason))).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !refused else { return context.close(promise: nil) }
        let from = context.remoteAddress.map { "\($0)" } ?? "?"
        let reason = tls != nil && (error is NIOSSLError || error is BoringSSLError)
            ? "\(TLSSetup.explain(error, diagnosis: tls)) (connection with \(from))"
            : "protocol error from \(from): \(error)"
        if active {
            link.noteLossReason(connection, reason)
        } else {
            link.handshakeFailed(connection, reason: reason)
        }
        context.close(promise: nil)
    }
}
