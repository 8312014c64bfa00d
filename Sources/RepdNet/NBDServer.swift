import Logging
import NBDProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Listens for NBD clients on a unix socket and optionally TCP, and serves each with an
/// `NBDConnectionHandler` over the given backend.
public final class NBDServer: Sendable {
    private let group: any EventLoopGroup
    private let backend: any NBDBackend
    private let channels: NIOLockedValueBox<[any Channel]> = .init([])
    private let clients: NIOLockedValueBox<[ObjectIdentifier: any Channel]> = .init([:])

    public init(group: any EventLoopGroup, backend: any NBDBackend) {
        self.group = group
        self.backend = backend
    }

    private func bootstrap() -> ServerBootstrap {
        let clients = self.clients
        let backend = self.backend
        return ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                clients.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in clients.withLockedValue { _ = $0.removeValue(forKey: id) } }
                if channel.localAddress?.protocol == .inet || channel.localAddress?.protocol == .inet6 {
                    _ = channel.setOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NBDConnectionHandler(backend: backend))
                }
            }
    }

    /// Binds the unix socket (replacing a stale socket file).
    public func listen(unixSocket path: String) async throws {
        let channel = try await bootstrap().bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        channels.withLockedValue { $0.append(channel) }
    }

    public func listen(host: String, port: Int) async throws {
        let channel = try await bootstrap().bind(host: host, port: port).get()
        channels.withLockedValue { $0.append(channel) }
    }

    /// Serves an already connected stream socket that starts in the transmission phase, e.g. one
    /// end of a socketpair whose other end was handed to the kernel's nbd driver. The server owns
    /// the descriptor from here on; `closeClients` closes it like any other client.
    public func serve(connectedSocket fd: Int32, session: NBDSession, name: String) async throws {
        let clients = self.clients
        let backend = self.backend
        _ = try await ClientBootstrap(group: group)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .channelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            .channelInitializer { channel in
                let id = ObjectIdentifier(channel)
                clients.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in clients.withLockedValue { _ = $0.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NBDConnectionHandler(backend: backend, transmission: session, name: name))
                }
            }
            .withConnectedSocket(fd)
            .get()
    }

    /// Stops accepting new clients.
    public func stopListening() async {
        let all = channels.withLockedValue { c in defer { c = [] }; return c }
        for channel in all { try? await channel.close() }
    }

    /// Closes every client connection.
    public func closeClients() async {
        let all = clients.withLockedValue { Array($0.values) }
        for channel in all { try? await channel.close() }
    }

    public var clientCount: Int { clients.withLockedValue { $0.count } }
}
