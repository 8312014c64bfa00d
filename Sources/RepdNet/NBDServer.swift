#if canImport(Glibc)
import Glibc
#endif
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
    /// Who each client is, and whether it opened the export (reached the transmission phase).
    private let registry: NIOLockedValueBox<[ObjectIdentifier: NBDClientInfo]> = .init([:])
    private let ownDeviceSize = NIOLockedValueBox<UInt64>(0)

    public init(group: any EventLoopGroup, backend: any NBDBackend) {
        self.group = group
        self.backend = backend
    }

    private func bootstrap(tls: NBDServerTLS? = nil) -> ServerBootstrap {
        let clients = self.clients
        let backend = self.backend
        return ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            .childChannelInitializer { [registry] channel in
                let id = ObjectIdentifier(channel)
                clients.withLockedValue { $0[id] = channel }
                let tcp = channel.localAddress?.protocol == .inet || channel.localAddress?.protocol == .inet6
                registry.withLockedValue {
                    $0[id] = NBDClientInfo(address: tcp ? channel.remoteAddress.map { "\($0)" } : nil, pid: nil, ownDevice: false, transmitting: false)
                }
                channel.closeFuture.whenComplete { _ in
                    clients.withLockedValue { _ = $0.removeValue(forKey: id) }
                    registry.withLockedValue { _ = $0.removeValue(forKey: id) }
                }
                if tcp {
                    _ = channel.setOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                } else if let provider = channel as? any SocketOptionProvider {
                    // Which process is at the other end of the unix socket (SO_PEERCRED).
                    provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
                        .whenSuccess { (credentials: PeerCredentials) in
                            registry.withLockedValue { $0[id]?.pid = credentials.pid }
                        }
                }
                let opened: @Sendable () -> Void = { registry.withLockedValue { $0[id]?.transmitting = true } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NBDConnectionHandler(backend: backend, opened: opened, tls: tls))
                }
            }
    }

    /// Binds the unix socket (replacing a stale socket file).
    public func listen(unixSocket path: String) async throws {
        let channel = try await bootstrap().bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        channels.withLockedValue { $0.append(channel) }
    }

    /// Binds a TCP listener; with `tls`, clients may or must (by its policy) use NBD_OPT_STARTTLS.
    /// (The unix socket, root only by its mode, is served in clear.)
    public func listen(host: String, port: Int, tls: NBDServerTLS? = nil) async throws {
        let channel = try await bootstrap(tls: tls).bind(host: host, port: port).get()
        channels.withLockedValue { $0.append(channel) }
    }

    /// Serves an already connected stream socket that starts in the transmission phase, e.g. one
    /// end of a socketpair whose other end was handed to the kernel's nbd driver. The server owns
    /// the descriptor from here on; `closeClients` closes it like any other client.
    public func serve(connectedSocket fd: Int32, session: NBDSession, name: String) async throws {
        let clients = self.clients
        let backend = self.backend
        let ownDeviceSize = self.ownDeviceSize
        _ = try await ClientBootstrap(group: group)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .channelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            .channelInitializer { [registry] channel in
                let id = ObjectIdentifier(channel)
                clients.withLockedValue { $0[id] = channel }
                // The block device repd attached itself: not an outside user of the export.
                registry.withLockedValue { $0[id] = NBDClientInfo(address: nil, pid: nil, ownDevice: true, transmitting: true) }
                channel.closeFuture.whenComplete { _ in
                    clients.withLockedValue { _ = $0.removeValue(forKey: id) }
                    registry.withLockedValue { _ = $0.removeValue(forKey: id) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NBDConnectionHandler(backend: backend, transmission: session, name: name,
                                                                                        grownSize: ownDeviceSize))
                }
            }
            .withConnectedSocket(fd)
            .get()
    }

    /// `repd resize`: the block device repd attached itself (served by `serve(connectedSocket:)`)
    /// may use `size` bytes from now on. Set before the kernel learns the new size.
    public func grewOwnDevice(to size: UInt64) {
        ownDeviceSize.withLockedValue { $0 = max($0, size) }
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

    /// Clients that opened the export (reached the transmission phase), besides the block device
    /// repd attached itself and the processes in `excludingPIDs` (its helpers).
    public func openClients(excludingPIDs: Set<Int32> = []) -> [NBDClientInfo] {
        registry.withLockedValue { Array($0.values) }
            .filter { $0.transmitting && !$0.ownDevice && !($0.pid.map(excludingPIDs.contains) ?? false) }
            .sorted { ($0.pid ?? 0, $0.address ?? "") < ($1.pid ?? 0, $1.address ?? "") }
    }
}

/// One NBD client of the export.
public struct NBDClientInfo: Sendable, Hashable {
    /// The client's address (TCP clients).
    public var address: String?
    /// The client's process (unix socket clients, from SO_PEERCRED).
    public var pid: Int32?
    /// A connection repd made itself (the kernel's nbd device).
    public var ownDevice: Bool
    public var transmitting: Bool
}

/// `struct ucred` of SO_PEERCRED, laid out as Linux has it.
struct PeerCredentials {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
