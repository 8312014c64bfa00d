import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerProtocol

/// The fencing path: a second way to reach a node while the replication link is down. Each node
/// listens on its `fence-address`; the peer's fence-peer handler (`repd fence-peer-outdate`)
/// connects, passes the same authenticated handshake as the replication link (hello, challenge and
/// response with the shared secret, both ways), sends one `fenceRequest`, gets one `fenceReply`
/// (DRBD's fence-peer exit code for it and a sentence), and the connection closes.
/// Docs/WireProtocol.md "The fencing path".
public final class FenceServer: Sendable {
    public typealias Answer = @Sendable (_ action: UInt8, _ peer: String) async -> (code: UInt8, reason: String)

    private var configuration: PeerLinkConfiguration { configurationBox.withLockedValue { $0 } }
    private let configurationBox: NIOLockedValueBox<PeerLinkConfiguration>
    private let group: any EventLoopGroup
    private let logger: Logger
    private let mac: @Sendable (String, [UInt8], [UInt8]) -> [UInt8]
    private let random: @Sendable () -> UInt64
    private let answer: Answer
    private let listener = NIOLockedValueBox<(any Channel)?>(nil)
    private let open = NIOLockedValueBox(0)
    /// Connections in handshake or waiting for their answer at once (a flood is refused).
    static let maximumConnections = 4
    /// A fencing connection that has not finished within this is closed.
    public static let timeout: TimeAmount = .seconds(30)

    /// `configuration`: the replication link's (resource, node names, secret); the listening
    /// address is `host`:`port`.
    public init(configuration: PeerLinkConfiguration, group: any EventLoopGroup, logger: Logger,
                mac: @escaping @Sendable (String, [UInt8], [UInt8]) -> [UInt8], random: @escaping @Sendable () -> UInt64,
                answer: @escaping Answer) {
        self.configurationBox = NIOLockedValueBox(configuration)
        self.group = group
        self.logger = logger
        self.mac = mac
        self.random = random
        self.answer = answer
    }

    /// `repd adjust`: the secret and names the next fencing connections authenticate with.
    public func update(_ new: PeerLinkConfiguration) {
        configurationBox.withLockedValue { $0 = new }
    }

    public func listen(host: String, port: Int) async throws {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 8)
            .childChannelInitializer { [self] channel in self.setUp(channel) }
            .bind(host: host, port: port)
            .get()
        listener.withLockedValue { $0 = channel }
    }

    public func stop() async {
        let channel = listener.withLockedValue { c in defer { c = nil }; return c }
        try? await channel?.close()
    }

    private func setUp(_ channel: any Channel) -> EventLoopFuture<Void> {
        let admitted = open.withLockedValue { count -> Bool in
            guard count < Self.maximumConnections else { return false }
            count += 1
            return true
        }
        guard admitted else {
            logger.warning("fencing path: refusing a connection from \(channel.remoteAddress.map { "\($0)" } ?? "?"): too many at once")
            return channel.close()
        }
        channel.closeFuture.whenComplete { [self] _ in self.open.withLockedValue { $0 -= 1 } }
        let handshake = PeerHandshake(FencePath.handshakeConfiguration(configuration, random: random), mac: mac)
        let handler = FenceServerHandler(handshake: handshake, logger: logger, answer: answer, peer: configuration.peerNode)
        channel.eventLoop.scheduleTask(in: Self.timeout) { channel.close(promise: nil) }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(PeerFrameDecoder()), PeerFrameEncoder(), handler])
        }
    }
}

final class FenceServerHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    private var handshake: PeerHandshake
    private let logger: Logger
    private let answer: FenceServer.Answer
    private let peer: String
    private var established = false
    private var answered = false

    init(handshake: PeerHandshake, logger: Logger, answer: @escaping FenceServer.Answer, peer: String) {
        self.handshake = handshake
        self.logger = logger
        self.answer = answer
        self.peer = peer
    }

    func channelActive(context: ChannelHandlerContext) {
        for message in handshake.start() { context.write(wrapOutboundOut(message), promise: nil) }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard established else {
            switch handshake.receive(message) {
            case .send(let messages):
                for m in messages { context.write(wrapOutboundOut(m), promise: nil) }
                context.flush()
            case .fail(let reason, let notify):
                logger.error("fencing path: refused \(context.remoteAddress.map { "\($0)" } ?? "?"): \(reason)")
                let channel = context.channel
                if notify {
                    context.writeAndFlush(wrapOutboundOut(.error(reason: reason))).whenComplete { _ in channel.close(promise: nil) }
                } else {
                    context.close(promise: nil)
                }
            case .established(_, let messages):
                for m in messages { context.write(wrapOutboundOut(m), promise: nil) }
                context.flush()
                established = true
            }
            return
        }
        guard case .fenceRequest(let action) = message, !answered else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.error(reason: "the fencing path carries one fenceRequest"))).whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        answered = true
        let loop = context.eventLoop
        let bound = NIOLoopBound(context, eventLoop: loop)
        let answer = self.answer
        let peer = self.peer
        let logger = self.logger
        let promise = loop.makePromise(of: (code: UInt8, reason: String).self)
        promise.completeWithTask { await answer(action, peer) }
        promise.futureResult.whenSuccess { result in
            logger.info("fencing path: \(peer) asked to outdate this node; answered \(result.code): \(result.reason)")
            let context = bound.value
            let channel = context.channel
            context.writeAndFlush(NIOAny(PeerMessage.fenceReply(code: result.code, reason: result.reason))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("fencing path: \(context.remoteAddress.map { "\($0)" } ?? "?"): \(error)")
        context.close(promise: nil)
    }
}

/// The client side: what `repd fence-peer-outdate` runs.
public enum FencePath {
    public enum Outcome: Sendable, Equatable {
        /// The peer answered with this fence-peer exit code and sentence.
        case answered(code: UInt8, reason: String)
        /// The peer could not be reached (connection refused, connect timeout): DRBD's exit code 5.
        case unreachable(String)
        /// The peer refused the handshake (wrong secret, wrong resource), broke the protocol, or
        /// accepted the connection and gave no answer. A peer that accepted a connection is alive:
        /// it is never assumed down.
        case refused(String)
    }

    static func handshakeConfiguration(_ c: PeerLinkConfiguration, random: @Sendable () -> UInt64) -> PeerHandshake.Configuration {
        var challenge: [UInt8] = []
        for _ in 0..<4 { withUnsafeBytes(of: random()) { challenge += $0 } }
        return PeerHandshake.Configuration(resource: c.resource, localNode: c.localNode, peerNode: c.peerNode,
                                           sharedSecret: c.sharedSecret, algorithm: c.algorithm, nonce: random(), challenge: challenge)
    }

    /// Asks the peer at `host`:`port` to outdate itself; bounded by `timeout`.
    public static func requestOutdate(configuration: PeerLinkConfiguration, host: String, port: Int, timeout: TimeAmount,
                                      mac: @escaping @Sendable (String, [UInt8], [UInt8]) -> [UInt8],
                                      random: @escaping @Sendable () -> UInt64) async -> Outcome {
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        let promise = OncePromise(loop.makePromise(of: Outcome.self))
        let handshake = PeerHandshake(handshakeConfiguration(configuration, random: random), mac: mac)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            ByteToMessageHandler(PeerFrameDecoder()), PeerFrameEncoder(),
                            FenceClientHandler(handshake: handshake, promise: promise),
                        ])
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            promise.succeed(.unreachable("\(host):\(port): \(error)"))
            return (try? await promise.futureResult.get()) ?? .unreachable("\(host):\(port)")
        }
        loop.scheduleTask(in: timeout) { promise.succeed(.refused("\(host):\(port) accepted the connection and gave no answer within \(timeout.nanoseconds / 1_000_000_000) s")) }
        let outcome = (try? await promise.futureResult.get()) ?? .refused("\(host):\(port): no outcome")
        try? await channel.close()
        return outcome
    }
}

final class FenceClientHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    private var handshake: PeerHandshake
    private let promise: OncePromise
    private var established = false

    init(handshake: PeerHandshake, promise: OncePromise) {
        self.handshake = handshake
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        for message in handshake.start() { context.write(wrapOutboundOut(message), promise: nil) }
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // It accepted the connection: it is alive, whatever made it close (too many connections,
        // its timeout, a handshake it refused silently). Never "assumed down".
        promise.succeed(.refused("the peer closed the fencing connection without an answer"))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        if established {
            switch message {
            case .fenceReply(let code, let reason): promise.succeed(.answered(code: code, reason: reason))
            case .error(let reason): promise.succeed(.refused(reason))
            default: promise.succeed(.refused("unexpected \(message.type) on the fencing path"))
            }
            context.close(promise: nil)
            return
        }
        switch handshake.receive(message) {
        case .send(let messages):
            for m in messages { context.write(wrapOutboundOut(m), promise: nil) }
            context.flush()
        case .fail(let reason, _):
            promise.succeed(.refused(reason))
            context.close(promise: nil)
        case .established(_, let messages):
            for m in messages { context.write(wrapOutboundOut(m), promise: nil) }
            established = true
            context.writeAndFlush(wrapOutboundOut(.fenceRequest(action: FenceAction.outdate)), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.succeed(.refused("\(error)"))
        context.close(promise: nil)
    }
}

/// A promise completed by the first of several racing outcomes (answer, close, timeout).
final class OncePromise: Sendable {
    private let promise: EventLoopPromise<FencePath.Outcome>
    private let done = NIOLockedValueBox(false)

    init(_ promise: EventLoopPromise<FencePath.Outcome>) { self.promise = promise }

    var futureResult: EventLoopFuture<FencePath.Outcome> { promise.futureResult }

    func succeed(_ outcome: FencePath.Outcome) {
        let first = done.withLockedValue { d -> Bool in
            defer { d = true }
            return !d
        }
        if first { promise.succeed(outcome) }
    }
}
