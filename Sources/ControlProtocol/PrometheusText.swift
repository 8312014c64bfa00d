import RepdCore

/// Renders resource statuses in the Prometheus text exposition format (version 0.0.4), which
/// Prometheus scrapes from `repd metrics --listen` and node_exporter's textfile collector reads
/// from `repd metrics > FILE`. Names and labels are listed in Docs/Operations.md ("Monitoring").
///
/// States are state sets: one series per possible state, 1 for the current one and 0 for the
/// others, so that `repd_disk_state{state="UpToDate"} == 0` is an alert rule. Sizes are in bytes,
/// durations in seconds, as Prometheus' naming conventions ask.
public enum PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ statuses: [ResourceStatus]) -> String {
        var out = Output()
        out.family("repd_resource_info", .gauge, "Always 1 for a resource that is up: its node, backing disk and NBD export.")
        for s in statuses {
            let device = s.devices.first
            out.sample("repd_resource_info", [("resource", s.name), ("node", s.node), ("backing_disk", device?.backingDisk ?? ""),
                                              ("device", device?.blockDevice?.path ?? ""), ("nbd_uri", s.nbdURI)], 1)
        }
        stateSet(&out, "repd_role", "This node's role.", statuses, Role.allCases.map(\.rawValue)) { [$0.role] }
        stateSet(&out, "repd_disk_state", "This node's disk state.", statuses, DiskState.allCases.map(\.rawValue)) {
            [$0.devices.first?.diskState ?? DiskState.diskless.rawValue]
        }
        gauge(&out, "repd_suspended", "1 while application I/O is suspended (fencing, no data, suspend-io).", statuses) { $0.suspended ? 1 : 0 }
        gauge(&out, "repd_size_bytes", "The size of the replicated device.", statuses) { Double(($0.devices.first?.size ?? 0) * 1024) }
        counter(&out, "repd_read_bytes_total", "Bytes applications read on this node.", statuses) { Double(($0.devices.first?.read ?? 0) * 1024) }
        counter(&out, "repd_written_bytes_total", "Bytes applications wrote on this node.", statuses) { Double(($0.devices.first?.written ?? 0) * 1024) }
        counter(&out, "repd_activity_log_writes_total", "Activity-log transactions written.", statuses) { Double($0.devices.first?.alWrites ?? 0) }
        counter(&out, "repd_bitmap_writes_total", "Bitmap pages written.", statuses) { Double($0.devices.first?.bmWrites ?? 0) }
        gauge(&out, "repd_upper_pending", "Application requests in progress.", statuses) { Double($0.devices.first?.upperPending ?? 0) }
        gauge(&out, "repd_lower_pending", "Writes in progress on the backing disk.", statuses) { Double($0.devices.first?.lowerPending ?? 0) }

        // The peer: one connection per resource (two nodes).
        let peers = statuses.compactMap { s in s.connections.first.map { (status: s, connection: $0, device: $0.peerDevices.first) } }
        out.family("repd_connection_state", .gauge, "The connection to the peer, as a state set.")
        for p in peers {
            for state in ConnectionState.allCases.map(\.rawValue) {
                out.sample("repd_connection_state", peerLabels(p.status, p.connection) + [("state", state)], state == p.connection.connectionState ? 1 : 0)
            }
        }
        peerStateSet(&out, "repd_peer_role", "The peer's role.", peers, Role.allCases.map(\.rawValue)) { $0.connection.peerRole }
        peerStateSet(&out, "repd_peer_disk_state", "The peer's disk state.", peers, DiskState.allCases.map(\.rawValue)) {
            $0.device?.peerDiskState ?? DiskState.unknown.rawValue
        }
        peerStateSet(&out, "repd_replication_state", "Replication with the peer (Established, SyncSource, SyncTarget, ...).", peers,
                     ReplicationState.allCases.map(\.rawValue)) { $0.device?.replicationState ?? ReplicationState.off.rawValue }
        peerGauge(&out, "repd_out_of_sync_bytes", .gauge, "Bytes marked out of sync with the peer (what a resync has to copy).", peers) {
            Double(($0.device?.outOfSync ?? 0) * 1024)
        }
        peerGauge(&out, "repd_peer_sent_bytes_total", .counter, "Bytes of data sent to the peer (replication and resync).", peers) {
            Double(($0.device?.sent ?? 0) * 1024)
        }
        peerGauge(&out, "repd_peer_received_bytes_total", .counter, "Bytes of data received from the peer.", peers) {
            Double(($0.device?.received ?? 0) * 1024)
        }
        peerGauge(&out, "repd_peer_pending", .gauge, "Requests sent to the peer and not answered yet.", peers) { Double($0.device?.pending ?? 0) }
        peerGauge(&out, "repd_peer_unacked", .gauge, "Requests received from the peer and not answered yet.", peers) { Double($0.device?.unacked ?? 0) }
        peerGauge(&out, "repd_resync_running", .gauge, "1 while a resync or an online verify runs.", peers) { $0.device?.hasSyncDetails == true ? 1 : 0 }
        peerGauge(&out, "repd_resync_paused", .gauge, "1 while a resync is paused (pause-sync, or by the peer).", peers) {
            ($0.device?.resyncSuspended ?? "no") == "no" ? 0 : 1
        }
        peerGauge(&out, "repd_resync_rate_bytes_per_second", .gauge, "Resync speed over the last seconds (0 when none runs).", peers) {
            Double(($0.device?.syncRateKiB ?? 0) * 1024)
        }
        peerGauge(&out, "repd_resync_remaining_seconds", .gauge, "Estimated seconds to finish the resync at its current speed (absent when unknown).",
                  peers) { $0.device?.etaSeconds.map(Double.init) }
        peerGauge(&out, "repd_split_brain", .gauge, "1 while the connection is StandAlone after an unresolved split brain.", peers) {
            $0.connection.isStandAloneAfterSplitBrain ? 1 : 0
        }

        out.family("repd_request_duration_seconds", .histogram, "Application (NBD) requests from receipt to reply, by operation.")
        for s in statuses {
            guard let latency = s.latency else { continue }
            for (op, histogram) in [("read", latency.read), ("write", latency.write), ("flush", latency.flush)] {
                out.histogram("repd_request_duration_seconds", [("resource", s.name), ("op", op)], histogram)
            }
        }
        out.family("repd_replication_duration_seconds", .histogram,
                   "Replicated writes from being queued to the peer until it acknowledged them (protocol C: written, B: received).")
        for p in peers {
            guard let latency = p.status.latency else { continue }
            out.histogram("repd_replication_duration_seconds", peerLabels(p.status, p.connection), latency.replication)
        }
        return out.text
    }

    typealias Peer = (status: ResourceStatus, connection: ResourceStatus.Connection, device: ResourceStatus.PeerDevice?)

    private static func peerLabels(_ status: ResourceStatus, _ connection: ResourceStatus.Connection) -> [(String, String)] {
        [("resource", status.name), ("peer", connection.name)]
    }

    private static func stateSet(_ out: inout Output, _ name: String, _ help: String, _ statuses: [ResourceStatus], _ states: [String],
                                 _ current: (ResourceStatus) -> [String]) {
        out.family(name, .gauge, help + " A state set: 1 for the current state, 0 for the others.")
        for s in statuses {
            let now = current(s)
            for state in states { out.sample(name, [("resource", s.name), ("state", state)], now.contains(state) ? 1 : 0) }
        }
    }

    private static func peerStateSet(_ out: inout Output, _ name: String, _ help: String, _ peers: [Peer], _ states: [String],
                                     _ current: (Peer) -> String) {
        out.family(name, .gauge, help + " A state set: 1 for the current state, 0 for the others.")
        for p in peers {
            let now = current(p)
            for state in states { out.sample(name, peerLabels(p.status, p.connection) + [("state", state)], state == now ? 1 : 0) }
        }
    }

    private static func gauge(_ out: inout Output, _ name: String, _ help: String, _ statuses: [ResourceStatus], _ value: (ResourceStatus) -> Double) {
        out.family(name, .gauge, help)
        for s in statuses { out.sample(name, [("resource", s.name)], value(s)) }
    }

    private static func counter(_ out: inout Output, _ name: String, _ help: String, _ statuses: [ResourceStatus], _ value: (ResourceStatus) -> Double) {
        out.family(name, .counter, help)
        for s in statuses { out.sample(name, [("resource", s.name)], value(s)) }
    }

    private static func peerGauge(_ out: inout Output, _ name: String, _ type: Output.Kind, _ help: String, _ peers: [Peer], _ value: (Peer) -> Double?) {
        out.family(name, type, help)
        for p in peers {
            if let v = value(p) { out.sample(name, peerLabels(p.status, p.connection), v) }
        }
    }

    struct Output {
        enum Kind: String { case gauge, counter, histogram }
        var text = ""

        mutating func family(_ name: String, _ kind: Kind, _ help: String) {
            text += "# HELP \(name) \(help.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n"))\n# TYPE \(name) \(kind.rawValue)\n"
        }

        mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " \(Self.number(value))\n"
        }

        mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: LatencyHistogram) {
            let cumulative = h.cumulative
            for (index, bound) in LatencyHistogram.boundsMicroseconds.enumerated() {
                sample(name + "_bucket", labels + [("le", Self.number(Double(bound) / 1_000_000))], Double(cumulative[index]))
            }
            sample(name + "_bucket", labels + [("le", "+Inf")], Double(h.count))
            sample(name + "_sum", labels, Double(h.sumNanoseconds) / 1_000_000_000)
            sample(name + "_count", labels, Double(h.count))
        }

        static func escape(_ value: String) -> String {
            value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"").replacingAll("\n", with: "\\n")
        }

        /// Integers without a fraction (`1048576`, not `1048576.0`); others as Swift prints them.
        static func number(_ value: Double) -> String {
            if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return "\(value)"
        }
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        guard contains(target) else { return self }
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}
