/// What the resync or verify engine knows about its run, in the units it counts in. The daemon
/// fills one and passes it to `ResourceStatus.PeerDevice.setSyncDetails(_:)`, which writes DRBD's
/// keys (sectors, milliseconds) and repd's (KiB, KiB/s, seconds) from the same figures.
public struct SyncRun: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case resync
        case verify
    }

    public var kind: Kind
    /// KiB to copy (resync) or to compare (verify) when the run started.
    public var totalKiB: UInt64
    /// Milliseconds since the run started, paused time included.
    public var elapsedMs: UInt64
    /// Milliseconds the run has been paused in total.
    public var pausedMs: UInt64
    /// The "current speed" window, as the daemon measures it (e.g. the last 10 to 30 seconds):
    /// its length, and the KiB done within it.
    public var windowMs: UInt64
    public var windowKiB: UInt64
    /// A shorter, more recent window (e.g. the last 3 seconds); DRBD's time-to-finish estimate
    /// uses it. Defaults to the current-speed window.
    public var shortWindowMs: UInt64
    public var shortWindowKiB: UInt64
    /// Resync: KiB that failed to resync, and KiB skipped because source and target checksums
    /// matched (csums-alg). What is left of a resync is the peer device's `out-of-sync` minus the
    /// failed KiB, as in DRBD.
    public var failedKiB: UInt64
    public var sameChecksumKiB: UInt64
    /// Verify: KiB not yet compared, the byte offsets where the verify started, stops (nil: the
    /// end) and is now, KiB skipped, and KiB found out of sync so far.
    public var verifyLeftKiB: UInt64
    public var verifyStartOffset: UInt64
    public var verifyStopOffset: UInt64?
    public var verifyPosition: UInt64
    public var verifySkippedKiB: UInt64
    public var verifyOutOfSyncKiB: UInt64
    /// The rate the resync controller aims at, KiB/s; nil with a fixed resync rate.
    public var wantKiBPerSecond: UInt64?
    /// Why this resync runs: the rule that decided it, in words.
    public var decision: String?

    public init(
        kind: Kind, totalKiB: UInt64, elapsedMs: UInt64, pausedMs: UInt64 = 0, windowMs: UInt64, windowKiB: UInt64,
        shortWindowMs: UInt64? = nil, shortWindowKiB: UInt64? = nil, failedKiB: UInt64 = 0, sameChecksumKiB: UInt64 = 0,
        verifyLeftKiB: UInt64 = 0, verifyStartOffset: UInt64 = 0, verifyStopOffset: UInt64? = nil, verifyPosition: UInt64 = 0,
        verifySkippedKiB: UInt64 = 0, verifyOutOfSyncKiB: UInt64 = 0, wantKiBPerSecond: UInt64? = nil, decision: String? = nil
    ) {
        self.kind = kind
        self.totalKiB = totalKiB
        self.elapsedMs = elapsedMs
        self.pausedMs = pausedMs
        self.windowMs = windowMs
        self.windowKiB = windowKiB
        self.shortWindowMs = shortWindowMs ?? windowMs
        self.shortWindowKiB = shortWindowKiB ?? windowKiB
        self.failedKiB = failedKiB
        self.sameChecksumKiB = sameChecksumKiB
        self.verifyLeftKiB = verifyLeftKiB
        self.verifyStartOffset = verifyStartOffset
        self.verifyStopOffset = verifyStopOffset
        self.verifyPosition = verifyPosition
        self.verifySkippedKiB = verifySkippedKiB
        self.verifyOutOfSyncKiB = verifyOutOfSyncKiB
        self.wantKiBPerSecond = wantKiBPerSecond
        self.decision = decision
    }
}

/// A resync or verify as the renderers need it, read back from a peer device's keys (so it works
/// just as well on JSON from another node or an older daemon).
public struct SyncProgress: Sendable, Equatable {
    public var isVerify: Bool
    /// KiB of the whole run, and KiB still to do.
    public var totalKiB: UInt64
    public var leftKiB: UInt64
    /// Percentage done, 0...100, as DRBD's `done:` computes it.
    public var percentDone: Double
    /// Current and average speed, KiB/s; nil when unknown.
    public var rateKiB: UInt64?
    public var averageKiB: UInt64?
    /// Seconds to finish at the current speed; nil while paused or stalled.
    public var etaSeconds: UInt64?
    /// The controller's target rate, KiB/s.
    public var wantKiB: UInt64?
    /// Who paused it (`user`, `peer`, `dependency`, comma-separated), nil when running.
    public var pausedBy: String?
    /// The state is PausedSyncS/PausedSyncT or the resync is suspended.
    public var isPaused: Bool
}

extension ResourceStatus.PeerDevice {
    /// Replication states in which a resync or a verify is under way (paused ones included).
    static let syncStates: Set<String> = ["SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT", "VerifyS", "VerifyT"]

    /// Whether a resync or an online verify is under way (or paused) on this peer device.
    public var isSyncing: Bool { Self.syncStates.contains(replicationState) }

    /// Whether the running job is an online verify.
    public var isVerifying: Bool { replicationState == "VerifyS" || replicationState == "VerifyT" }

    /// Sets every sync/verify key from one description of the run, DRBD's derived figures
    /// computed as drbdsetup computes them. Call it after `outOfSync` is set (a resync's
    /// remaining work is `outOfSync - failed`).
    public mutating func setSyncDetails(_ run: SyncRun) {
        let sectorsPerKiB: UInt64 = 2
        hasSyncDetails = run.totalKiB > 0
        hasOnlineVerifyDetails = run.kind == .verify && run.totalKiB > 0
        rsTotal = run.totalKiB * sectorsPerKiB
        rsDtStartMs = run.elapsedMs
        rsPausedMs = run.pausedMs
        rsDt0Ms = run.windowMs
        rsDb0Sectors = run.windowKiB * sectorsPerKiB
        rsDt1Ms = run.shortWindowMs
        rsDb1Sectors = run.shortWindowKiB * sectorsPerKiB
        let leftKiB: UInt64
        switch run.kind {
        case .resync:
            rsFailed = run.failedKiB * sectorsPerKiB
            rsSameCsum = run.sameChecksumKiB * sectorsPerKiB
            (ovStartSector, ovStopSector, ovPosition, ovLeft, ovSkipped) = (nil, nil, nil, nil, nil)
            verifyOutOfSyncKiB = nil
            leftKiB = outOfSync - min(outOfSync, run.failedKiB)
        case .verify:
            (rsFailed, rsSameCsum) = (nil, nil)
            ovStartSector = run.verifyStartOffset / 512
            ovStopSector = run.verifyStopOffset.map { $0 / 512 }
            ovPosition = run.verifyPosition / 512
            ovLeft = run.verifyLeftKiB * sectorsPerKiB
            ovSkipped = run.verifySkippedKiB * sectorsPerKiB
            verifyOutOfSyncKiB = run.verifyOutOfSyncKiB
            leftKiB = run.verifyLeftKiB
        }
        let doneKiB = run.totalKiB - min(run.totalKiB, leftKiB)
        want = run.wantKiBPerSecond.map { Double($0) / 1024 } ?? 0
        db0dt0 = Self.mibPerSecond(kib: run.windowKiB, ms: run.windowMs)
        db1dt1 = Self.mibPerSecond(kib: run.shortWindowKiB, ms: run.shortWindowMs)
        dbdt = Self.mibPerSecond(kib: doneKiB, ms: run.elapsedMs - min(run.elapsedMs, run.pausedMs))
        estimatedSecondsToFinish = run.shortWindowKiB == 0
            ? 987_654_321
            : UInt64((Double(max(run.shortWindowMs, 1)) / 1000 * Double(leftKiB) / Double(run.shortWindowKiB)).rounded())
        percentResyncDone = run.totalKiB == 0 ? 0 : Self.twoDecimals(100 * Double(doneKiB) / Double(run.totalKiB))
        syncRateKiB = run.windowKiB * 1000 / max(run.windowMs, 1)
        syncRateAverageKiB = doneKiB * 1000 / max(run.elapsedMs - min(run.elapsedMs, run.pausedMs), 1)
        let paused = replicationState.hasPrefix("Paused") || resyncSuspended != "no"
        etaSeconds = paused || syncRateKiB == 0 ? nil : leftKiB / syncRateKiB!
        syncDecision = run.decision
    }

    /// Removes every sync/verify key (the run finished or was aborted).
    public mutating func clearSyncDetails() {
        hasSyncDetails = false
        hasOnlineVerifyDetails = false
        (rsTotal, rsDtStartMs, rsPausedMs, rsDt0Ms, rsDb0Sectors, rsDt1Ms, rsDb1Sectors) = (nil, nil, nil, nil, nil, nil, nil)
        (rsFailed, rsSameCsum, ovStartSector, ovStopSector, ovPosition, ovLeft, ovSkipped) = (nil, nil, nil, nil, nil, nil, nil)
        (want, db0dt0, db1dt1, dbdt, estimatedSecondsToFinish, percentResyncDone) = (nil, nil, nil, nil, nil, nil)
        (syncRateKiB, syncRateAverageKiB, etaSeconds, syncDecision, verifyOutOfSyncKiB) = (nil, nil, nil, nil, nil)
    }

    /// The running resync or verify, or nil when none runs. `deviceSizeKiB` serves when the
    /// daemon gave no sync details (DRBD's "in resync without details"): the whole device is
    /// then the total and `out-of-sync` what is left.
    public func syncProgress(deviceSizeKiB: UInt64) -> SyncProgress? {
        guard isSyncing else { return nil }
        let verify = isVerifying
        let total: UInt64
        let left: UInt64
        let percent: Double
        if let rsTotal, rsTotal > 0 {
            total = rsTotal / 2
            if verify {
                left = (ovLeft ?? 0) / 2
            } else {
                left = outOfSync - min(outOfSync, (rsFailed ?? 0) / 2)
            }
            percent = 100 * Double(total - min(total, left)) / Double(total)
        } else {
            total = deviceSizeKiB
            left = verify ? 0 : outOfSync
            percent = percentInSync
        }
        let done = total - min(total, left)
        let rate = syncRateKiB ?? rsDb0Sectors.map { sectors in sectors / 2 * 1000 / max(rsDt0Ms ?? 0, 1) }
        let average = syncRateAverageKiB ?? rsDtStartMs.map { elapsed in
            done * 1000 / max(elapsed - min(elapsed, rsPausedMs ?? 0), 1)
        }
        let pausedBy = resyncSuspended == "no" ? nil : resyncSuspended
        let paused = replicationState.hasPrefix("Paused") || pausedBy != nil
        let eta: UInt64? = etaSeconds ?? {
            guard !paused, let rate, rate > 0 else { return nil }
            return left / rate
        }()
        let wantKiB = want.flatMap { $0 > 0 ? UInt64(($0 * 1024).rounded()) : nil }
        return SyncProgress(
            isVerify: verify, totalKiB: total, leftKiB: left, percentDone: percent, rateKiB: rate, averageKiB: average,
            etaSeconds: paused ? nil : eta, wantKiB: wantKiB, pausedBy: pausedBy, isPaused: paused)
    }

    static func mibPerSecond(kib: UInt64, ms: UInt64) -> Double {
        twoDecimals(Double(kib) / Double(max(ms, 1)) * 1000 / 1024)
    }

    static func twoDecimals(_ value: Double) -> Double {
        (value * 100).rounded() / 100
    }
}
