import RepdCore

/// `repd show-gi RES`: the generation identifiers of this node's disk, as `dump-md` prints them,
/// and what they mean in plain words, in the spirit of `drbdadm show-gi`. Pure: the CLI reads
/// the identifiers from the running daemon's status (`repd-current-uuid` ...) or, offline, from
/// the metadata, and passes them in.
public struct GenerationExplanation: Sendable, Equatable {
    /// The superblock flags `show-gi` explains (DRBD's `MDF_*`).
    public struct Flags: Sendable, Equatable {
        public var consistent: Bool
        public var wasUpToDate: Bool
        public var primaryIndicator: Bool
        public var crashedPrimary: Bool
        public var activityLogClean: Bool
        public var peerOutdated: Bool
        public var fullSyncNeeded: Bool
        public var connectedIndicator: Bool

        public init(
            consistent: Bool, wasUpToDate: Bool, primaryIndicator: Bool = false, crashedPrimary: Bool = false,
            activityLogClean: Bool = false, peerOutdated: Bool = false, fullSyncNeeded: Bool = false,
            connectedIndicator: Bool = false
        ) {
            self.consistent = consistent
            self.wasUpToDate = wasUpToDate
            self.primaryIndicator = primaryIndicator
            self.crashedPrimary = crashedPrimary
            self.activityLogClean = activityLogClean
            self.peerOutdated = peerOutdated
            self.fullSyncNeeded = fullSyncNeeded
            self.connectedIndicator = connectedIndicator
        }

        public init(_ flags: MetadataFlags) {
            self.init(
                consistent: flags.contains(.consistent), wasUpToDate: flags.contains(.wasUpToDate),
                primaryIndicator: flags.contains(.primaryIndicator), crashedPrimary: flags.contains(.crashedPrimary),
                activityLogClean: flags.contains(.activityLogClean), peerOutdated: flags.contains(.peerOutdated),
                fullSyncNeeded: flags.contains(.fullSyncNeeded), connectedIndicator: flags.contains(.connectedIndicator))
        }

        /// From the `dump-md` flag names (`repd-md-flags` in the status).
        public init(names: [String]) {
            var flags = MetadataFlags()
            for entry in MetadataFlags.known where names.contains(entry.name) { flags.insert(entry.flag) }
            self.init(flags)
        }

        /// The set flags by their `dump-md` names, in bit order.
        public var names: [String] {
            [
                (consistent, "consistent"), (wasUpToDate, "was-up-to-date"), (primaryIndicator, "primary-indicator"),
                (crashedPrimary, "crashed-primary"), (peerOutdated, "peer-outdated"), (fullSyncNeeded, "full-sync-needed"),
                (activityLogClean, "activity-log-clean"), (connectedIndicator, "connected-indicator"),
            ].filter(\.0).map(\.1)
        }
    }

    public var resource: String
    public var generation: GenerationIdentifiers
    public var flags: Flags
    /// The disk state of the running resource; nil when it is not up (the metadata on disk is
    /// then all there is).
    public var diskState: String?
    /// KiB marked out of sync in the bitmap.
    public var outOfSyncKiB: UInt64

    public init(resource: String, generation: GenerationIdentifiers, flags: Flags, diskState: String?, outOfSyncKiB: UInt64) {
        self.resource = resource
        self.generation = generation
        self.flags = flags
        self.diskState = diskState
        self.outOfSyncKiB = outOfSyncKiB
    }

    /// From a running resource's status; nil when the daemon did not report its identifiers.
    public init?(status: ResourceStatus, volume: Int = 0) {
        guard let device = status.devices.first(where: { $0.volume == volume }),
              let current = device.currentUUID.flatMap({ UInt64($0, radix: 16) }),
              let bitmap = device.bitmapUUID.flatMap({ UInt64($0, radix: 16) })
        else { return nil }
        let history = (device.historyUUIDs ?? []).compactMap { UInt64($0, radix: 16) }
        let outOfSync = status.connections.flatMap(\.peerDevices).first { $0.volume == volume }?.outOfSync ?? 0
        self.init(
            resource: status.name, generation: GenerationIdentifiers(current: current, bitmap: bitmap, history: history),
            flags: Flags(names: device.metadataFlags ?? []), diskState: device.diskState, outOfSyncKiB: outOfSync)
    }

    /// The identifiers on one line, as drbdadm prints them: current:bitmap:history:history,
    /// then the flags as 1/0 in the order consistent, was-up-to-date, primary-indicator,
    /// crashed-primary, activity-log-clean.
    public var compactLine: String {
        let ids = ([generation.current, generation.bitmap] + generation.history).map(GenerationIdentifiers.text)
        let bits = [flags.consistent, flags.wasUpToDate, flags.primaryIndicator, flags.crashedPrimary, flags.activityLogClean]
        return (ids + bits.map { $0 ? "1" : "0" }).joined(separator: ":")
    }

    /// The whole `show-gi` text, ending without a newline.
    public func text() -> String {
        let hex = GenerationIdentifiers.text
        let history: String = generation.history.map(hex).joined(separator: " ")
        let flagText: String = flags.names.isEmpty ? "none" : flags.names.joined(separator: " ")
        let disk: String = diskState.map { "\($0) (the resource is up)" }
            ?? "not attached (the resource is not up; read from the metadata)"
        var lines: [String] = []
        lines.append("\(resource): generation identifiers of this node's disk")
        lines.append("  current  " + hex(generation.current))
        lines.append("  bitmap   " + hex(generation.bitmap))
        lines.append("  history  " + history)
        lines.append("  flags    " + flagText)
        lines.append("  disk     " + disk + ", \(outOfSyncKiB) KiB marked out of sync")
        lines.append("  in one line: " + compactLine)
        lines.append("")
        lines.append("What this means:")
        lines += meaning().map { "  - " + $0 }
        return lines.joined(separator: "\n")
    }

    /// The explanations, one sentence each.
    public func meaning() -> [String] {
        let hex = GenerationIdentifiers.text
        var sentences: [String] = []

        if generation.isJustCreated {
            sentences.append(
                "current: fresh metadata (create-md): this disk has never held a data generation. Run "
                    + "`repd primary --force \(resource)` on the node whose data is to be kept (the peer then gets a full "
                    + "sync), or, for two empty disks, `repd new-current-uuid --clear-bitmap \(resource)` to skip that sync.")
        } else {
            let primary = generation.current & 1 == 1
                ? " It began while this node was Primary (the lowest bit is set)."
                : " It began while this node was Secondary (the lowest bit is clear)."
            sentences.append("current: this disk holds data generation \(hex(generation.current))." + primary)
        }

        if generation.bitmap == 0 {
            if outOfSyncKiB == 0 {
                sentences.append(
                    "bitmap 0: not tracking changes, because the peer held the same data when the nodes were last "
                        + "connected; nothing has to be copied from here.")
            } else {
                sentences.append(
                    "bitmap 0, yet \(outOfSyncKiB) KiB are marked out of sync: this disk is waiting for a resync "
                        + "(an interrupted resync to this node, or an invalidate); they are copied at the next connect.")
            }
        } else {
            let since = generation.bitmapIgnoringRole == GenerationIdentifiers.justCreated
                ? "since the disks were created"
                : "since generation \(hex(generation.bitmap))"
            sentences.append(
                "bitmap \(hex(generation.bitmap)): tracking changes \(since), the data the peer is expected "
                    + "to hold. A peer still at that generation catches up by copying only the \(outOfSyncKiB) KiB "
                    + "marked out of sync.")
        }

        let known = generation.history.filter { $0 != 0 }
        if known.isEmpty {
            sentences.append("history: empty: no older generations are recorded.")
        } else {
            sentences.append(
                "history: older generations, newest first (" + known.map(hex).joined(separator: ", ") + "). A peer "
                    + "still at one of them fell further behind than a bitmap covers and gets a full sync; a peer "
                    + "that moved on from one of them on its own is a split brain.")
        }

        if !flags.consistent {
            sentences.append(
                "not consistent: no resync to this disk has completed (or one was interrupted). Its data must not be "
                    + "used until a resync from an UpToDate peer finishes.")
        } else if flags.wasUpToDate {
            sentences.append("consistent and was up to date: this disk held the newest data when it was last attached.")
        } else {
            sentences.append(
                "consistent, but not marked up to date (Outdated): the peer may hold newer data. Promote this node "
                    + "only if the peer's data is lost, with `repd primary --force \(resource)`.")
        }
        if flags.crashedPrimary {
            sentences.append(
                "crashed primary: this node was Primary when it last stopped without `repd down` (crash, kill, power "
                    + "loss). The areas named in its activity log are resynced to the peer at the next connect.")
        } else if flags.primaryIndicator {
            sentences.append(
                diskState == nil
                    ? "primary indicator: this node was Primary when it stopped."
                    : "primary indicator: this node is Primary.")
        }
        if diskState == nil && !generation.isJustCreated {
            sentences.append(
                flags.activityLogClean
                    ? "activity log clean: the last stop was clean; nothing to replay at `repd up`."
                    : "activity log not clean: the last stop was not clean; `repd up` replays it and marks the areas "
                        + "it names for resync.")
        }
        if flags.peerOutdated {
            sentences.append("peer outdated: the peer's disk is known to be Outdated; it must not be promoted.")
        }
        if flags.fullSyncNeeded {
            sentences.append("full sync needed: the whole device is resynced at the next connect.")
        }
        return sentences
    }
}
