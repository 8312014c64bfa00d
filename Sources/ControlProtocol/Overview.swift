/// `repd overview`: one line per resource in the manner of drbd-overview, and under a resource
/// that resyncs or verifies the two progress lines DRBD users know from /proc/drbd:
///
///     r0  SyncSource  Primary/Secondary  UpToDate/Inconsistent  C  nbd+unix:///r0?socket=/run/repd/r0.sock
///         [===>................] sync'ed: 18.4% (776/952)M
///         finish: 0:00:19 speed: 40,480 (38,002) K/sec
///
/// Columns: the resource (`r0/1` for volume 1 of a multi-volume resource), the connection state
/// (the replication state instead while a resync or verify runs, as DRBD 8 shows it), the roles
/// and the disk states as local/peer, the replication protocol, the NBD export. The columns are
/// aligned over all lines. Pure: the caller redraws it as often as it likes.
public enum Overview {
    /// The overview lines of `statuses`, each cut to `width` characters (pass the terminal's
    /// columns, or `Int.max` when the output is not a terminal).
    public static func lines(_ statuses: [ResourceStatus], width: Int) -> [String] {
        var rows: [(columns: [String], extra: [String])] = []
        for status in statuses {
            let single = status.devices.count <= 1
            let devices: [ResourceStatus.Device?] = status.devices.isEmpty ? [nil] : status.devices
            for device in devices {
                rows.append(row(status, device: device, single: single))
            }
        }
        let columnCount = rows.map(\.columns.count).max() ?? 0
        var widths = Array(repeating: 0, count: columnCount)
        for row in rows {
            for (index, column) in row.columns.enumerated() { widths[index] = max(widths[index], column.count) }
        }
        var result: [String] = []
        for row in rows {
            var line = ""
            for (index, column) in row.columns.enumerated() {
                let last = index == row.columns.count - 1
                line += last ? column : TextFormat.padRight(column, widths[index]) + "  "
            }
            result.append(line)
            result += row.extra.map { "    " + $0 }
        }
        return result.map { cut($0, width) }
    }

    static func row(_ status: ResourceStatus, device: ResourceStatus.Device?, single: Bool) -> (columns: [String], extra: [String]) {
        let volume = device?.volume ?? 0
        let connection = status.connections.first
        let peer = connection?.peerDevices.first { $0.volume == volume }
        let progress = peer.flatMap { $0.syncProgress(deviceSizeKiB: device?.size ?? 0) }
        var state = connection?.connectionState ?? "StandAlone"
        if state == "Connected", let peer, peer.replicationState != "Established", peer.replicationState != "Off" {
            state = peer.replicationState
        }
        let peerRole = connection.map { $0.connectionState == "Connected" ? $0.peerRole : "Unknown" } ?? "Unknown"
        let peerDisk = peer?.peerDiskState ?? "DUnknown"
        let columns = [
            single && volume == 0 ? status.name : "\(status.name)/\(volume)",
            state,
            "\(status.role)/\(peerRole)",
            "\(device?.diskState ?? "Diskless")/\(peerDisk)",
            connection?.replicationProtocol ?? "-",
            status.nbdURI,
        ]
        var extra: [String] = []
        if let progress {
            extra.append(progressBarLine(progress))
            extra.append(finishLine(progress, replicationState: peer?.replicationState ?? ""))
        }
        if let connection, connection.isStandAloneAfterSplitBrain {
            let command = connection.resolveCommand ?? "repd connect --discard-my-data \(status.name)"
            extra.append("split brain: on the node whose changes are to be dropped run: \(command)")
        }
        return (columns, extra)
    }

    /// `[==>.................] sync'ed: 18.4% (776/952)M`, as /proc/drbd draws it: the bar has
    /// 20 places, one for each 5 % done, the `>` always drawn; the percentage has one decimal, cut (not rounded); the
    /// figures are what is left and the total, in MiB (in KiB below 16 MiB, with a `K`).
    public static func progressBarLine(_ progress: SyncProgress) -> String {
        let total = progress.totalKiB
        let left = min(progress.leftKiB, total)
        let permille = total == 0 ? 1000 : Int((total - left) * 1000 / total)
        let filled = max(permille / 50, 1)
        let bar = String(repeating: "=", count: filled - 1) + ">" + String(repeating: ".", count: 20 - filled)
        let label = progress.isVerify ? "verified:" : "sync'ed:"
        let percent = TextFormat.padLeft("\(permille / 10)", 3) + ".\(permille % 10)%"
        let figures = total >= 16 * 1024 ? "(\(left / 1024)/\(total / 1024))M" : "(\(left)/\(total))K"
        var line = "[\(bar)] \(label)\(percent) \(figures)"
        if progress.isPaused {
            line += progress.pausedBy.map { " (paused by \($0))" } ?? " (paused)"
        }
        return line
    }

    /// `finish: 0:05:27 speed: 40,480 (38,002) K/sec`: the time left at the current speed, the
    /// current speed and, in parentheses, the average since the start (paused time left out);
    /// `want:` the controller's target on a SyncTarget or verify source, as /proc/drbd does.
    /// While paused or stalled the time reads `-:--:--`.
    public static func finishLine(_ progress: SyncProgress, replicationState: String) -> String {
        let finish = progress.etaSeconds.map(TextFormat.clock) ?? "-:--:--"
        let speed = progress.isPaused ? 0 : progress.rateKiB ?? 0
        var line = "finish: \(finish) speed: \(TextFormat.thousands(speed))"
        line += " (\(TextFormat.thousands(progress.averageKiB ?? 0)))"
        if let want = progress.wantKiB, replicationState == "SyncTarget" || replicationState == "VerifyS" {
            line += " want: \(TextFormat.thousands(want))"
        }
        line += " K/sec"
        if !progress.isPaused && speed == 0 { line += " (stalled)" }
        return line
    }

    static func cut(_ line: String, _ width: Int) -> String {
        guard width > 0, line.count > width else { return line }
        return String(line.prefix(width))
    }
}
