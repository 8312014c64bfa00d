import ControlProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The daemon's control socket: newline-delimited JSON requests, one reply line each.
public final class ControlServer: Sendable {
    public typealias Handler = @Sendable (ControlRequest) async -> ControlReply

    private let group: any EventLoopGroup
    private let handler: Handler
    private let channel: NIOLockedValueBox<(any Channel)?> = .init(nil)

    public init(group: any EventLoopGroup, handler: @escaping Handler) {
        self.group = group
        self.handler = handler
    }

    public func listen(unixSocket path: String) async throws {
        let handler = self.handler
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ControlConnectionHandler(handler: handler))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
        channel.withLockedValue { $0 = server }
    }

    public func stop() async {
        let c = channel.withLockedValue { c in defer { c = nil }; return c }
        try? await c?.close()
    }
}

final class ControlConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let handler: ControlServer.Handler
    private var buffer = ByteBuffer()
    static let maximumLine = 64 << 10

    init(handler: @escaping ControlServer.Handler) {
        self.handler = handler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            let line = buffer.readString(length: length) ?? ""
            buffer.moveReaderIndex(forwardBy: 1)
            respond(context: context, line: line)
        }
        if buffer.readableBytes > Self.maximumLine {
            context.close(promise: nil)
        }
        buffer.discardReadBytes()
    }

    private func respond(context: ChannelHandlerContext, line: String) {
        let handler = self.handler
        let loop = context.eventLoop
        let channel = context.channel
        let future: EventLoopFuture<ControlReply> = loop.makeFutureWithTask {
            guard let request = try? ControlCodec.decode(ControlRequest.self, from: line) else {
                return ControlReply(ok: false, message: "malformed control request")
            }
            return await handler(request)
        }
        future.whenSuccess { reply in
            guard let bytes = try? ControlCodec.encodeLine(reply) else { return }
            var out = channel.allocator.buffer(capacity: bytes.count)
            out.writeBytes(bytes)
            channel.writeAndFlush(out, promise: nil)
        }
    }
}
