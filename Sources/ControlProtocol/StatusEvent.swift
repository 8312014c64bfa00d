import Foundation

/// One line of `repd events`, in the manner of DRBD 9's `drbdsetup events2`:
///
///     exists resource name:r0 role:Secondary suspended:no
///     change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncSource done:42.10
///
/// An action (`exists` for the initial state, `create` for an object that appeared later,
/// `change`, `destroy`), the object, the fields that identify it, then its state. `exists` and
/// `create` lines carry the whole state, `change` lines only what changed. `exists -` ends the
/// initial state. Each event also has a JSON form, one object per line, keys sorted.
///
/// The events come from comparing two statuses (`events(from:to:)`), so the CLI can poll the
/// daemon, or the daemon can compute them at each state change and push them; both give the same
/// lines.
public struct StatusEvent: Sendable, Equatable {
    public enum Action: String, Sendable {
        case exists, create, change, destroy
    }

    public enum Object: String, Sendable {
        case resource
        case device
        case connection
        case peerDevice = "peer-device"
    }

    /// A field's value: text as it is, numbers as numbers, yes/no flags (JSON booleans), and
    /// percentages printed with two decimals.
    public enum Value: Sendable, Equatable {
        case text(String)
        case integer(Int)
        case flag(Bool)
        case percent(Double)

        var text: String {
            switch self {
            case .text(let value): return value
            case .integer(let value): return "\(value)"
            case .flag(let value): return yesNo(value)
            case .percent(let value): return TextFormat.twoDecimals(value)
            }
        }
    }

    public struct Field: Sendable, Equatable {
        public var key: String
        public var value: Value

        public init(_ key: String, _ value: Value) {
            self.key = key
            self.value = value
        }
    }

    public var action: Action
    /// nil only for `exists -`, the end of the initial state.
    public var object: Object?
    public var fields: [Field]

    public init(_ action: Action, _ object: Object?, _ fields: [Field]) {
        self.action = action
        self.object = object
        self.fields = fields
    }

    /// `exists -`: everything that exists has been listed; what follows are changes.
    public static let endOfInitialState = StatusEvent(.exists, nil, [])

    /// The line as `drbdsetup events2` prints it, without a newline.
    public var line: String {
        guard let object else { return "\(action.rawValue) -" }
        return ([action.rawValue, object.rawValue] + fields.map { "\($0.key):\($0.value.text)" }).joined(separator: " ")
    }

    /// One JSON object on one line, keys sorted: `action`, `object` and the fields, numbers as
    /// numbers, yes/no as booleans (`object` is `-` for the end of the initial state).
    public var json: String {
        var object: [String: JSONValue] = ["action": .string(action.rawValue), "object": .string(self.object?.rawValue ?? "-")]
        for field in fields {
            switch field.value {
            case .text(let value): object[field.key] = .string(value)
            case .integer(let value): object[field.key] = .integer(value)
            case .flag(let value): object[field.key] = .bool(value)
            case .percent(let value): object[field.key] = .number((value * 100).rounded() / 100)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(object), as: UTF8.self)) ?? "{}"
    }
}

/// The JSON values an event can hold.
enum JSONValue: Encodable {
    case string(String)
    case integer(Int)
    case number(Double)
    case bool(Bool)

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        }
    }
}

extension StatusEvent {
    /// The initial state of `repd events` (and all of `repd events --now`): `exists` lines for
    /// every resource, then `exists -`.
    public static func initialState(_ statuses: [ResourceStatus]) -> [StatusEvent] {
        statuses.flatMap { whole($0, action: .exists) } + [endOfInitialState]
    }

    /// What changed from `old` to `new` (the same resource), in drbdsetup's order: resource,
    /// connections, devices, peer devices, then what disappeared. With `old` nil (the resource
    /// came up after the initial state) every object is announced with `create`. Nothing changed:
    /// no events. A running resync adds a `done:` change whenever the percentage (two decimals)
    /// moves.
    public static func events(from old: ResourceStatus?, to new: ResourceStatus) -> [StatusEvent] {
        guard let old else { return whole(new, action: .create) }
        var events: [StatusEvent] = []
        let name = Field("name", .text(new.name))

        var resourceFields: [Field] = []
        if old.role != new.role { resourceFields.append(Field("role", .text(new.role))) }
        if old.suspended != new.suspended { resourceFields.append(suspendedField(new)) }
        if !resourceFields.isEmpty { events.append(StatusEvent(.change, .resource, [name] + resourceFields)) }

        for connection in new.connections {
            guard let before = old.connections.first(where: { $0.peerNodeID == connection.peerNodeID }) else {
                events.append(StatusEvent(.create, .connection, connectionIdentity(new, connection) + connectionState(connection)))
                continue
            }
            var fields: [Field] = []
            if before.connectionState != connection.connectionState {
                fields.append(Field("connection", .text(connection.connectionState)))
            }
            if before.peerRole != connection.peerRole { fields.append(Field("role", .text(connection.peerRole))) }
            if connection.isStandAloneAfterSplitBrain && (!before.isStandAloneAfterSplitBrain || !fields.isEmpty) {
                fields.append(Field("sync-state", .text("SplitBrain")))
            }
            if !fields.isEmpty { events.append(StatusEvent(.change, .connection, connectionIdentity(new, connection) + fields)) }
        }

        for device in new.devices {
            guard let before = old.devices.first(where: { $0.volume == device.volume }) else {
                events.append(StatusEvent(.create, .device, deviceIdentity(new, device) + deviceState(device)))
                continue
            }
            var fields: [Field] = []
            if before.diskState != device.diskState { fields.append(Field("disk", .text(device.diskState))) }
            if before.client != device.client { fields.append(Field("client", .flag(device.client))) }
            if before.quorum != device.quorum { fields.append(Field("quorum", .flag(device.quorum))) }
            if !fields.isEmpty { events.append(StatusEvent(.change, .device, deviceIdentity(new, device) + fields)) }
        }

        for connection in new.connections {
            let beforeConnection = old.connections.first { $0.peerNodeID == connection.peerNodeID }
            for peer in connection.peerDevices {
                let identity = peerDeviceIdentity(new, connection, peer)
                guard let before = beforeConnection?.peerDevices.first(where: { $0.volume == peer.volume }) else {
                    events.append(StatusEvent(.create, .peerDevice, identity + peerDeviceState(new, peer)))
                    continue
                }
                var fields: [Field] = []
                if before.replicationState != peer.replicationState {
                    fields.append(Field("replication", .text(peer.replicationState)))
                }
                if before.peerDiskState != peer.peerDiskState || before.peerClient != peer.peerClient {
                    fields.append(Field("peer-disk", .text(peer.peerDiskState)))
                    fields.append(Field("peer-client", .flag(peer.peerClient)))
                }
                if before.resyncSuspended != peer.resyncSuspended {
                    fields.append(Field("resync-suspended", .text(peer.resyncSuspended)))
                }
                if let percent = done(new, peer), !fields.isEmpty || percent != done(old, before) {
                    fields.append(Field("done", .percent(percent)))
                }
                if !fields.isEmpty { events.append(StatusEvent(.change, .peerDevice, identity + fields)) }
            }
            for before in beforeConnection?.peerDevices ?? [] where !connection.peerDevices.contains(where: { $0.volume == before.volume }) {
                events.append(StatusEvent(.destroy, .peerDevice, peerDeviceIdentity(new, connection, before)))
            }
        }

        for before in old.connections where !new.connections.contains(where: { $0.peerNodeID == before.peerNodeID }) {
            for peer in before.peerDevices {
                events.append(StatusEvent(.destroy, .peerDevice, peerDeviceIdentity(old, before, peer)))
            }
            events.append(StatusEvent(.destroy, .connection, connectionIdentity(old, before)))
        }
        for before in old.devices where !new.devices.contains(where: { $0.volume == before.volume }) {
            events.append(StatusEvent(.destroy, .device, [name, Field("volume", .integer(before.volume))]))
        }
        return events
    }

    /// The resource went down (its daemon is gone): every object is destroyed, the resource last.
    public static func destroyed(_ old: ResourceStatus) -> [StatusEvent] {
        var events: [StatusEvent] = []
        for connection in old.connections {
            for peer in connection.peerDevices {
                events.append(StatusEvent(.destroy, .peerDevice, peerDeviceIdentity(old, connection, peer)))
            }
            events.append(StatusEvent(.destroy, .connection, connectionIdentity(old, connection)))
        }
        for device in old.devices {
            events.append(StatusEvent(.destroy, .device, [Field("name", .text(old.name)), Field("volume", .integer(device.volume))]))
        }
        events.append(StatusEvent(.destroy, .resource, [Field("name", .text(old.name))]))
        return events
    }

    /// Every object of `status` with its whole state, in drbdsetup's order.
    static func whole(_ status: ResourceStatus, action: Action) -> [StatusEvent] {
        var events = [StatusEvent(action, .resource, [
            Field("name", .text(status.name)), Field("role", .text(status.role)), suspendedField(status),
        ])]
        for connection in status.connections {
            events.append(StatusEvent(action, .connection, connectionIdentity(status, connection) + connectionState(connection)))
        }
        for device in status.devices {
            events.append(StatusEvent(action, .device, deviceIdentity(status, device) + deviceState(device)))
        }
        for connection in status.connections {
            for peer in connection.peerDevices {
                events.append(StatusEvent(action, .peerDevice, peerDeviceIdentity(status, connection, peer) + peerDeviceState(status, peer)))
            }
        }
        return events
    }

    static func suspendedField(_ status: ResourceStatus) -> Field {
        Field("suspended", .text(status.suspended ? "yes" : "no"))
    }

    static func connectionIdentity(_ status: ResourceStatus, _ connection: ResourceStatus.Connection) -> [Field] {
        [Field("name", .text(status.name)), Field("peer-node-id", .integer(connection.peerNodeID)), Field("conn-name", .text(connection.name))]
    }

    static func connectionState(_ connection: ResourceStatus.Connection) -> [Field] {
        var fields = [Field("connection", .text(connection.connectionState)), Field("role", .text(connection.peerRole))]
        if connection.isStandAloneAfterSplitBrain { fields.append(Field("sync-state", .text("SplitBrain"))) }
        return fields
    }

    static func deviceIdentity(_ status: ResourceStatus, _ device: ResourceStatus.Device) -> [Field] {
        [Field("name", .text(status.name)), Field("volume", .integer(device.volume)), Field("minor", .integer(device.minor))]
    }

    static func deviceState(_ device: ResourceStatus.Device) -> [Field] {
        [Field("disk", .text(device.diskState)), Field("client", .flag(device.client)), Field("quorum", .flag(device.quorum))]
    }

    static func peerDeviceIdentity(
        _ status: ResourceStatus, _ connection: ResourceStatus.Connection, _ peer: ResourceStatus.PeerDevice
    ) -> [Field] {
        connectionIdentity(status, connection) + [Field("volume", .integer(peer.volume))]
    }

    static func peerDeviceState(_ status: ResourceStatus, _ peer: ResourceStatus.PeerDevice) -> [Field] {
        var fields = [
            Field("replication", .text(peer.replicationState)), Field("peer-disk", .text(peer.peerDiskState)),
            Field("peer-client", .flag(peer.peerClient)), Field("resync-suspended", .text(peer.resyncSuspended)),
        ]
        if let done = done(status, peer) { fields.append(Field("done", .percent(done))) }
        return fields
    }

    /// The percentage done of a running resync or verify, rounded to two decimals as printed.
    static func done(_ status: ResourceStatus, _ peer: ResourceStatus.PeerDevice) -> Double? {
        let size = status.devices.first { $0.volume == peer.volume }?.size ?? 0
        return peer.syncProgress(deviceSizeKiB: size).map { ($0.percentDone * 100).rounded() / 100 }
    }
}
