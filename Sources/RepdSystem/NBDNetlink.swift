#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The Linux nbd driver's generic netlink interface (<linux/nbd-netlink.h>, family "nbd",
/// version 1): connect a `/dev/nbdN` to sockets the caller serves, reconnect them, disconnect.
///
/// The kernel speaks only the transmission phase of the NBD protocol on the sockets it is given:
/// the size, block size and transmission flags a handshake would have told it are passed here.
public struct NBDKernelDriver {
    enum Command: UInt8 {
        case connect = 1, disconnect = 2, reconfigure = 3, status = 5
    }

    enum Attribute: UInt16 {
        case index = 1, sizeBytes = 2, blockSizeBytes = 3, timeout = 4, serverFlags = 5, clientFlags = 6
        case sockets = 7, deadConnectionTimeout = 8, deviceList = 9, backendIdentifier = 10
    }

    // NBD_SOCK_ITEM = 1 containing NBD_SOCK_FD = 1; NBD_DEVICE_ITEM = 1 containing NBD_DEVICE_INDEX = 1,
    // NBD_DEVICE_CONNECTED = 2.
    static let socketItem: UInt16 = 1
    static let socketFD: UInt16 = 1
    static let deviceItem: UInt16 = 1
    static let deviceIndex: UInt16 = 1
    static let deviceConnected: UInt16 = 2

    /// What NBD_CMD_CONNECT needs.
    public struct ConnectRequest: Sendable {
        /// The device index (`/dev/nbdN`), or nil for any free one.
        public var index: Int?
        /// Connected stream sockets; the kernel keeps its own reference to each.
        public var sockets: [Int32]
        public var sizeBytes: UInt64
        public var blockSizeBytes: UInt64
        /// The NBD transmission flags (NBD_FLAG_*), as a handshake would have sent them.
        public var serverFlags: UInt64
        /// How long the kernel keeps requests queued after every connection died, waiting for a
        /// reconnect, before it fails them.
        public var deadConnectionTimeoutSeconds: UInt64
        /// Shown in `/sys/block/nbdN/backend`; a reconnect must name the same one.
        public var backend: String?

        public init(index: Int?, sockets: [Int32], sizeBytes: UInt64, blockSizeBytes: UInt64, serverFlags: UInt64,
                    deadConnectionTimeoutSeconds: UInt64, backend: String?) {
            self.index = index
            self.sockets = sockets
            self.sizeBytes = sizeBytes
            self.blockSizeBytes = blockSizeBytes
            self.serverFlags = serverFlags
            self.deadConnectionTimeoutSeconds = deadConnectionTimeoutSeconds
            self.backend = backend
        }
    }

    private let socket: GenericNetlinkSocket
    private let family: UInt16

    /// Finds the driver's netlink family. Throws ENOENT when the kernel has no nbd driver loaded.
    public init() throws(SystemError) {
        socket = try GenericNetlinkSocket()
        family = try socket.family(named: "nbd")
    }

    /// Whether the nbd module is loaded (or built in).
    public static var isLoaded: Bool { ProcessSupport.fileExists("/sys/module/nbd") }

    /// The messages of a request, for tests: the attributes NBD_CMD_CONNECT carries.
    public static func connectAttributes(_ request: ConnectRequest) -> [NetlinkAttribute] {
        var attributes: [NetlinkAttribute] = []
        if let index = request.index { attributes.append(.u32(Attribute.index.rawValue, UInt32(index))) }
        attributes.append(.u64(Attribute.sizeBytes.rawValue, request.sizeBytes))
        attributes.append(.u64(Attribute.blockSizeBytes.rawValue, request.blockSizeBytes))
        attributes.append(.u64(Attribute.serverFlags.rawValue, request.serverFlags))
        attributes.append(.u64(Attribute.deadConnectionTimeout.rawValue, request.deadConnectionTimeoutSeconds))
        attributes.append(socketsAttribute(request.sockets))
        if let backend = request.backend { attributes.append(.string(Attribute.backendIdentifier.rawValue, backend)) }
        return attributes
    }

    static func socketsAttribute(_ sockets: [Int32]) -> NetlinkAttribute {
        .nested(Attribute.sockets.rawValue, sockets.map { .nested(socketItem, [.u32(socketFD, UInt32(bitPattern: $0))]) })
    }

    /// Connects a device; returns its index.
    public func connect(_ request: ConnectRequest) throws(SystemError) -> Int {
        let what = request.index.map { "NBD_CMD_CONNECT /dev/nbd\($0)" } ?? "NBD_CMD_CONNECT"
        let replies = try socket.request(family: family, command: Command.connect.rawValue, version: 1,
                                         attributes: Self.connectAttributes(request), what: what)
        for attributes in replies {
            if let index = attributes.first(where: { $0.kind == Attribute.index.rawValue })?.u32Value { return Int(index) }
        }
        if let index = request.index { return index }
        throw SystemError("netlink", "\(what): the kernel did not say which device", errno: .ioError)
    }

    /// Replaces the dead connections of a connected device with new sockets (after the server
    /// restarted). The kernel refuses when the device is not connected or names another backend.
    public func reconnect(index: Int, sockets: [Int32], backend: String?) throws(SystemError) {
        var attributes: [NetlinkAttribute] = [.u32(Attribute.index.rawValue, UInt32(index)), Self.socketsAttribute(sockets)]
        if let backend { attributes.append(.string(Attribute.backendIdentifier.rawValue, backend)) }
        _ = try socket.request(family: family, command: Command.reconfigure.rawValue, version: 1,
                               attributes: attributes, what: "NBD_CMD_RECONFIGURE /dev/nbd\(index)")
    }

    /// Gives a connected device a new size (NBD_CMD_RECONFIGURE with NBD_ATTR_SIZE_BYTES, Linux
    /// 5.3 and later): the kernel updates the capacity and tells udev.
    /// A device connected with a backend identifier must be named by it (else EINVAL).
    public func resize(index: Int, sizeBytes: UInt64, backend: String?) throws(SystemError) {
        var attributes: [NetlinkAttribute] = [.u32(Attribute.index.rawValue, UInt32(index)), .u64(Attribute.sizeBytes.rawValue, sizeBytes)]
        if let backend { attributes.append(.string(Attribute.backendIdentifier.rawValue, backend)) }
        _ = try socket.request(family: family, command: Command.reconfigure.rawValue, version: 1,
                               attributes: attributes, what: "NBD_CMD_RECONFIGURE (size) /dev/nbd\(index)")
    }

    /// Disconnects a device: the kernel sends NBD_CMD_DISC on each socket and fails what is queued.
    public func disconnect(index: Int) throws(SystemError) {
        _ = try socket.request(family: family, command: Command.disconnect.rawValue, version: 1,
                               attributes: [.u32(Attribute.index.rawValue, UInt32(index))], what: "NBD_CMD_DISCONNECT /dev/nbd\(index)")
    }

    /// Every nbd device the driver has, and whether it is connected.
    public func devices() throws(SystemError) -> [(index: Int, connected: Bool)] {
        let replies = try socket.request(family: family, command: Command.status.rawValue, version: 1, attributes: [], what: "NBD_CMD_STATUS")
        var result: [(index: Int, connected: Bool)] = []
        for attributes in replies {
            for list in attributes where list.kind == Attribute.deviceList.rawValue {
                for item in list.children where item.kind == Self.deviceItem {
                    let fields = item.children
                    guard let index = fields.first(where: { $0.kind == Self.deviceIndex })?.u32Value else { continue }
                    let connected = (fields.first(where: { $0.kind == Self.deviceConnected })?.u8Value ?? 0) != 0
                    result.append((Int(index), connected))
                }
            }
        }
        return result.sorted { $0.index < $1.index }
    }

    /// `/sys/block/nbdN/backend` (Linux 5.18+), nil when absent or unreadable.
    public static func backend(index: Int) -> String? {
        guard let text = SysFS.read("/sys/block/nbd\(index)/backend") else { return nil }
        let value = text.trimmingWhitespace()
        return value.isEmpty ? nil : value
    }
}
