/// The text form of `repd status`, laid out as DRBD 9's `drbdadm status` (drbdsetup's
/// `status` command): the resource and its role; the local disk; per peer the connection and the
/// peer's role, then the replication state and the peer's disk. Like drbdsetup, the brief form
/// leaves out what is normal (`connection:Connected`, `replication:Established`, `volume:0` of a
/// single volume); `verbose` prints every field, `statistics` adds the counter lines. Lines are
/// not wrapped. repd's own additions are comment lines starting with `#`, and under
/// `statistics` a `speed:` line while a resync or verify runs.
extension ResourceStatus {
    /// The brief form, as `drbdadm status RES` prints it.
    public func text() -> String {
        text(verbose: false, statistics: false)
    }

    /// `repd status [--verbose] [--statistics]` for this resource, without a trailing newline.
    public func text(verbose: Bool, statistics: Bool) -> String {
        var lines: [String] = []
        var head = name
        if verbose { head += " node-id:\(nodeID)" }
        head += " role:\(role)"
        if let reasons = suspendedReasons, !reasons.isEmpty {
            head += " suspended:" + reasons.joined(separator: ",")
        } else if verbose || suspended {
            head += " suspended:\(suspended ? "yes" : "no")"
        }
        lines.append(head)
        if verbose && statistics { lines.append("    write-ordering:\(writeOrdering)") }

        let singleVolume = devices.count == 1 && devices[0].volume == 0
        for device in devices {
            lines += device.textLines(resource: name, verbose: verbose, statistics: statistics, singleVolume: singleVolume)
        }
        for connection in connections {
            lines += connection.textLines(
                resource: name, devices: devices, verbose: verbose, statistics: statistics, singleVolume: singleVolume)
        }
        if let message { lines.append("  # \(message)") }
        return lines.joined(separator: "\n")
    }

    /// Several resources, each followed by an empty line as drbdadm prints them. Prints
    /// `noneUpText` when the list is empty.
    public static func text(_ statuses: [ResourceStatus], verbose: Bool, statistics: Bool, node: String, runDirectory: String) -> String {
        if statuses.isEmpty { return noneUpText(node: node, runDirectory: runDirectory) }
        return statuses.map { $0.text(verbose: verbose, statistics: statistics) + "\n" }.joined(separator: "\n")
    }

    /// What `repd status` prints when no resource is up on this node.
    public static func noneUpText(node: String, runDirectory: String) -> String {
        "# No resource is up on node \(node) (no daemon in \(runDirectory)); start one with `repd up RES`.\n"
    }
}

extension ResourceStatus.Device {
    func textLines(resource: String, verbose: Bool, statistics: Bool, singleVolume: Bool) -> [String] {
        var fields: [String] = []
        if verbose || !singleVolume {
            fields.append("volume:\(volume)")
            if verbose { fields.append("minor:\(minor)") }
        }
        fields.append("disk:\(diskState)")
        if diskState == "Diskless" { fields.append("client:\(yesNo(client))") }
        if verbose || !quorum { fields.append("quorum:\(yesNo(quorum))") }
        var lines = ["  " + fields.joined(separator: " ")]
        if let diskFailure {
            lines.append("      # \(diskFailure); `repd attach \(resource)` takes the disk (or a new one made with create-md) back")
        }
        if let blockDevice { lines.append("      # \(blockDevice.summary)") }
        if statistics {
            var counters: [String] = []
            if verbose { counters.append("size:\(size)") }
            counters += ["read:\(read)", "written:\(written)"]
            if verbose {
                counters += [
                    "al-writes:\(alWrites)", "bm-writes:\(bmWrites)", "upper-pending:\(upperPending)",
                    "lower-pending:\(lowerPending)", "al-suspended:\(yesNo(alSuspended))",
                ]
            }
            if verbose || blocked != "no" { counters.append("blocked:\(blocked)") }
            lines.append("      " + counters.joined(separator: " "))
        }
        if let found = lastVerifyOutOfSyncKiB, found > 0 || verbose {
            lines.append(found == 0
                ? "      # the last online verify found no differences"
                : "      # the last online verify found \(found) KiB out of sync; repair: "
                    + "repd invalidate-remote --reset-bitmap=no \(resource) (on the node whose data is right)")
        }
        return lines
    }
}

extension ResourceStatus.Connection {
    func textLines(resource: String, devices: [ResourceStatus.Device], verbose: Bool, statistics: Bool, singleVolume: Bool) -> [String] {
        let connected = connectionState == "Connected"
        var fields = [name]
        if verbose { fields.append("node-id:\(peerNodeID)") }
        if verbose || !connected { fields.append("connection:\(connectionState)") }
        if verbose || connected { fields.append("role:\(peerRole)") }
        if verbose || congested {
            fields += ["congested:\(yesNo(congested))", "ap-in-flight:\(apInFlight)", "rs-in-flight:\(rsInFlight)"]
        }
        var lines = ["  " + fields.joined(separator: " ")]
        if isStandAloneAfterSplitBrain {
            lines += splitBrainHint(resource: resource)
        }
        guard verbose || statistics || connected else { return lines }
        for peer in peerDevices {
            let sizeKiB = devices.first { $0.volume == peer.volume }?.size ?? 0
            lines += peer.textLines(verbose: verbose, statistics: statistics, singleVolume: singleVolume, deviceSizeKiB: sizeKiB)
        }
        return lines
    }

    /// The comment lines under a connection that is StandAlone after a split brain.
    func splitBrainHint(resource: String) -> [String] {
        let command = resolveCommand ?? "repd connect --discard-my-data \(resource)"
        return [
            "    # split brain: both nodes changed the data while they were apart, and no after-sb policy chose a side",
            "    # on the node whose changes are to be dropped, run: \(command)",
            "    # then, if the other node is StandAlone too, run there: repd connect \(resource)",
        ]
    }
}

extension ResourceStatus.PeerDevice {
    func textLines(verbose: Bool, statistics: Bool, singleVolume: Bool, deviceSizeKiB: UInt64) -> [String] {
        var fields: [String] = []
        if verbose || !singleVolume { fields.append("volume:\(volume)") }
        if verbose || (replicationState != "Off" && replicationState != "Established") {
            fields.append("replication:\(replicationState)")
        }
        let progress = syncProgress(deviceSizeKiB: deviceSizeKiB)
        let showDisk = verbose || statistics || replicationState != "Off" || peerDiskState != "DUnknown"
        if showDisk {
            fields.append("peer-disk:\(peerDiskState)")
            if peerDiskState == "Diskless" { fields.append("peer-client:\(yesNo(peerClient))") }
            if let progress { fields.append("done:" + TextFormat.twoDecimals(progress.percentDone)) }
            if verbose || resyncSuspended != "no" { fields.append("resync-suspended:\(resyncSuspended)") }
        }
        var lines: [String] = []
        if !fields.isEmpty { lines.append("    " + fields.joined(separator: " ")) }
        if statistics && showDisk {
            var counters = ["received:\(received)", "sent:\(sent)"]
            if verbose || outOfSync > 0 { counters.append("out-of-sync:\(outOfSync)") }
            if verbose {
                counters += ["pending:\(pending)", "unacked:\(unacked)"]
                if hasSyncDetails, let db1dt1 {
                    counters.append("dbdt1:" + TextFormat.twoDecimals(db1dt1))
                    if let eta = estimatedSecondsToFinish, eta != 987_654_321 { counters.append("eta:\(eta)") }
                }
            }
            lines.append("        " + counters.joined(separator: " "))
            if let progress { lines.append("        " + Self.speedLine(progress, verifyOutOfSyncKiB: verifyOutOfSyncKiB)) }
        }
        if verbose, let syncDecision, progress != nil {
            lines.append("        # why this resync: \(syncDecision)")
        }
        return lines
    }

    /// repd's line under the counters while a resync or verify runs: speeds in KiB/s, the time
    /// to finish, who paused it.
    static func speedLine(_ progress: SyncProgress, verifyOutOfSyncKiB: UInt64?) -> String {
        var fields: [String] = []
        if let rate = progress.rateKiB { fields.append("speed:\(rate)KiB/s") }
        if let average = progress.averageKiB { fields.append("average:\(average)KiB/s") }
        if let want = progress.wantKiB { fields.append("want:\(want)KiB/s") }
        if let eta = progress.etaSeconds {
            fields.append("finish:" + TextFormat.clock(eta))
        } else if !progress.isPaused {
            fields.append("finish:stalled")
        }
        if let pausedBy = progress.pausedBy {
            fields.append("paused-by:\(pausedBy)")
        } else if progress.isPaused {
            fields.append("paused")
        }
        if progress.isVerify, let found = verifyOutOfSyncKiB { fields.append("found-out-of-sync:\(found)KiB") }
        return fields.joined(separator: " ")
    }
}

func yesNo(_ value: Bool) -> String { value ? "yes" : "no" }
