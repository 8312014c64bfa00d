import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `repd metrics --listen`: answers `GET /metrics` (and `/`) over HTTP/1.1 with a body produced
/// afresh for each scrape. The body is made off the event loop: it asks every daemon for its
/// status over the control sockets, which blocks.
public final class MetricsServer: Sendable {
    public typealias Body = @Sendable () -> (contentType: String, text: String)

    private let group: any EventLoopGroup
    private let body: Body
    private let channel: NIOLockedValueBox<(any Channel)?> = .init(nil)

    public init(group: any EventLoopGroup, body: @escaping Body) {
        self.group = group
        self.body = body
    }

    /// Binds to `host:port`; returns the address bound (port 0 picks a free one).
    @discardableResult
    public func listen(host: String, port: Int) async throws -> SocketAddress? {
        let body = self.body
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(body: body))
                }
            }
            .bind(host: host, port: port)
            .get()
        channel.withLockedValue { $0 = server }
        return server.localAddress
    }

    /// Waits until the server is closed (by `stop` or an error).
    public func wait() async throws {
        guard let c = channel.withLockedValue({ $0 }) else { return }
        try await c.closeFuture.get()
    }

    public func stop() async {
        let c = channel.withLockedValue { c in defer { c = nil }; return c }
        try? await c?.close()
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let body: MetricsServer.Body
    private var head: HTTPRequestHead?

    init(body: @escaping MetricsServer.Body) {
        self.body = body
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            send(context: context, head: head, status: .methodNotAllowed, contentType: "text/plain", text: "only GET\n")
            return
        }
        guard path == "/metrics" || path == "/" else {
            send(context: context, head: head, status: .notFound, contentType: "text/plain", text: "repd serves /metrics\n")
            return
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let body = self.body
        DispatchQueue.global().async {
            let made = body()
            loop.execute {
                let (handler, context) = bound.value
                handler.send(context: context, head: head, status: .ok, contentType: made.contentType, text: made.text)
            }
        }
    }

    private func send(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, text: String) {
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(buffer.readableBytes)")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }
}
