import RepdCore
import XCTest

/// Identifiers used in the tables. Low bit clear unless a row sets it (the role bit).
private enum U {
    static let jc = GenerationIdentifiers.justCreated
    static let off = GenerationIdentifiers.syncUUIDOffset
    static let a: UInt64 = 0xA1A1_0000_0000_00A0
    static let b: UInt64 = 0xB2B2_0000_0000_00B0
    static let c: UInt64 = 0xC3C3_0000_0000_00C0
    static let d: UInt64 = 0xD4D4_0000_0000_00D0
    static let e: UInt64 = 0xE5E5_0000_0000_00E0
    static let f: UInt64 = 0xF6F6_0000_0000_00F0
    static let p: UInt64 = 0x1717_0000_0000_0010
    static let q: UInt64 = 0x2828_0000_0000_0020
    static let r: UInt64 = 0x3939_0000_0000_0030
    static let s: UInt64 = 0x4A4A_0000_0000_0040
}

private func gen(_ current: UInt64, _ bitmap: UInt64 = 0, _ h0: UInt64 = 0, _ h1: UInt64 = 0) -> GenerationIdentifiers {
    GenerationIdentifiers(current: current, bitmap: bitmap, history: [h0, h1])
}

private func view(
    _ generation: GenerationIdentifiers, _ disk: DiskState = .upToDate, _ role: Role = .secondary,
    crashed: Bool = false, blocks: UInt64 = 0
) -> SyncView {
    SyncView(generation: generation, disk: disk, role: role, crashedPrimary: crashed, outOfSyncBlocks: blocks)
}

/// DRBD's rules come in pairs: what one side finds by rule N the other finds by its mirror.
private func mirroredRule(_ rule: Int) -> Int {
    let pairs = [20: 30, 30: 20, 34: 35, 35: 34, 36: 37, 37: 36, 50: 70, 70: 50, 51: 71, 71: 51, 60: 80, 80: 60]
    return pairs[rule] ?? rule
}

final class SyncDecisionTests: XCTestCase {
    struct Row {
        var name: String
        var local: SyncView
        var peer: SyncView
        var localResolves = false
        var strategy: SyncStrategy
        var rule: Int
    }

    // (local generations, peer generations, disk states, roles, crashed flags, localResolves) -> (strategy, rule)
    static let table: [Row] = [
        // Rule 5 (repd): no handshake without two disks.
        Row(name: "local diskless", local: view(gen(U.a), .diskless, .primary), peer: view(gen(U.a)),
            strategy: .noSync, rule: 5),
        Row(name: "peer failed disk", local: view(gen(U.a)), peer: view(gen(U.b), .failed),
            strategy: .noSync, rule: 5),
        Row(name: "peer disk unknown", local: view(gen(U.a)), peer: view(gen(U.b), .unknown),
            strategy: .noSync, rule: 5),

        // Rule 10: both just created.
        Row(name: "both just created, Inconsistent", local: view(gen(U.jc), .inconsistent),
            peer: view(gen(U.jc), .inconsistent), strategy: .bothInconsistent, rule: 10),
        Row(name: "both just created, disks claim UpToDate", local: view(gen(U.jc)), peer: view(gen(U.jc)),
            strategy: .noSync, rule: 10),
        Row(name: "just created vs no identifier (repd treats 0 like just created)",
            local: view(gen(0), .outdated), peer: view(gen(U.jc), .outdated), strategy: .noSync, rule: 10),

        // Rules 20/30: one forced primary vs just created -> full sync from the forced one.
        Row(name: "forced primary vs just created", local: view(gen(U.a | 1, U.jc), .upToDate, .primary),
            peer: view(gen(U.jc), .inconsistent), strategy: .becomeSyncSource(full: true), rule: 30),
        Row(name: "just created but Consistent vs data (no disk override)", local: view(gen(U.jc), .consistent),
            peer: view(gen(U.a, U.jc), .upToDate, .primary), strategy: .becomeSyncTarget(full: true), rule: 20),
        Row(name: "forced primary vs just created, both UpToDate", local: view(gen(U.a | 1, U.jc)),
            peer: view(gen(U.jc)), strategy: .becomeSyncSource(full: true), rule: 30),

        // Rule 40: equal currents.
        Row(name: "equal currents", local: view(gen(U.a, 0, U.p, U.q)), peer: view(gen(U.a, 0, U.p, U.q)),
            strategy: .noSync, rule: 40),
        Row(name: "equal currents, role bit ignored", local: view(gen(U.a | 1), .upToDate, .primary),
            peer: view(gen(U.a)), strategy: .noSync, rule: 40),
        Row(name: "equal currents, local crashed primary", local: view(gen(U.a | 1), crashed: true),
            peer: view(gen(U.a)), strategy: .becomeSyncSource(full: false), rule: 40),
        Row(name: "equal currents, both crashed, local resolves", local: view(gen(U.a | 1), crashed: true),
            peer: view(gen(U.a | 1), crashed: true), localResolves: true,
            strategy: .becomeSyncTarget(full: false), rule: 40),
        Row(name: "equal currents, both crashed, peer resolves", local: view(gen(U.a | 1), crashed: true),
            peer: view(gen(U.a | 1), crashed: true), localResolves: false,
            strategy: .becomeSyncSource(full: false), rule: 40),

        // Rules 34/36: equal currents, only we have a bitmap UUID.
        Row(name: "was SyncSource, missed the end of the resync",
            local: view(gen(U.a, U.s, U.p, U.q)), peer: view(gen(U.a, 0, U.s, U.p)),
            strategy: .becomeSyncSource(full: false), rule: 34),
        Row(name: "was SyncSource, peer did not record the sync UUID",
            local: view(gen(U.a, U.s, U.p, U.q)), peer: view(gen(U.a, 0, U.r, U.q)),
            strategy: .becomeSyncSource(full: false), rule: 36),

        // Rule 50/70: one side's current is the other's bitmap UUID.
        Row(name: "our current is the peer's bitmap UUID", local: view(gen(U.a, 0, U.p)),
            peer: view(gen(U.b | 1, U.a | 1, U.p), .upToDate, .primary),
            strategy: .becomeSyncTarget(full: false), rule: 50),
        Row(name: "Outdated, our current is the peer's bitmap UUID", local: view(gen(U.a), .outdated),
            peer: view(gen(U.b | 1, U.a), .upToDate, .primary),
            strategy: .becomeSyncTarget(full: false), rule: 50),

        // Rule 51/71: a sync UUID that did not get through.
        Row(name: "peer's sync UUID never arrived", local: view(gen(U.a), .upToDate),
            peer: view(gen(U.b | 1, U.a &+ U.off, U.a, U.p), .upToDate, .primary),
            strategy: .becomeSyncTarget(full: false), rule: 51),

        // Rule 60/80: one side's current is in the other's history.
        Row(name: "our current is in the peer's history", local: view(gen(U.a, 0, U.p)),
            peer: view(gen(U.c, U.b, U.a, U.p)), strategy: .becomeSyncTarget(full: true), rule: 60),
        Row(name: "our current is the peer's older history entry", local: view(gen(U.a)),
            peer: view(gen(U.c, 0, U.b, U.a)), strategy: .becomeSyncTarget(full: true), rule: 60),

        // Rule 90: both wrote after a partition.
        Row(name: "split brain, both wrote", local: view(gen(U.b | 1, U.a | 1, U.p), .upToDate, .primary, blocks: 7),
            peer: view(gen(U.c | 1, U.a | 1, U.p), .upToDate, .primary, blocks: 9),
            strategy: .splitBrain, rule: 90),
        Row(name: "split brain, two forced primaries from just created",
            local: view(gen(U.a | 1, U.jc), .upToDate, .primary), peer: view(gen(U.b | 1, U.jc), .upToDate, .primary),
            strategy: .splitBrain, rule: 90),

        // Rule 100: related only through history.
        Row(name: "histories related, no common bitmap", local: view(gen(U.a, U.b, U.p, U.q)),
            peer: view(gen(U.c, U.d, U.r, U.p)), strategy: .splitBrainUnresolvable, rule: 100),
        Row(name: "totally unrelated", local: view(gen(U.a, 0, U.b, U.c)), peer: view(gen(U.d, 0, U.e, U.f)),
            strategy: .unrelatedData, rule: 100),
        Row(name: "unrelated beats disk states", local: view(gen(U.a, 0, U.b, U.c), .inconsistent),
            peer: view(gen(U.d, 0, U.e, U.f)), strategy: .unrelatedData, rule: 100),

        // Disk-state preconditions.
        Row(name: "both Inconsistent, generations say target", local: view(gen(U.a), .inconsistent),
            peer: view(gen(U.b, U.a), .inconsistent), strategy: .bothInconsistent, rule: 50),
        Row(name: "Inconsistent vs UpToDate, equal currents -> bitmap", local: view(gen(U.a), .inconsistent),
            peer: view(gen(U.a)), strategy: .becomeSyncTarget(full: false), rule: 40),
        Row(name: "Inconsistent vs Outdated, generations say source -> target", local: view(gen(U.b, U.a), .inconsistent),
            peer: view(gen(U.a), .outdated), strategy: .becomeSyncTarget(full: false), rule: 70),
        Row(name: "Inconsistent vs UpToDate, unresolvable split brain -> full", local: view(gen(U.a, U.b, U.p, U.q), .inconsistent),
            peer: view(gen(U.c, U.d, U.r, U.p)), strategy: .becomeSyncTarget(full: true), rule: 100),
        Row(name: "Inconsistent vs UpToDate, split brain -> bitmap", local: view(gen(U.b, U.a), .inconsistent),
            peer: view(gen(U.c, U.a)), strategy: .becomeSyncTarget(full: false), rule: 90),
        Row(name: "Consistent vs Inconsistent, rule 80 -> full from us", local: view(gen(U.c, U.b, U.a), .consistent),
            peer: view(gen(U.a), .inconsistent), strategy: .becomeSyncSource(full: true), rule: 80),
    ]

    func testDecisionTableFromBothSides() {
        for row in Self.table {
            let forward = SyncDecider.decide(local: row.local, peer: row.peer, localResolves: row.localResolves)
            XCTAssertEqual(forward.strategy, row.strategy, "\(row.name): \(forward)")
            XCTAssertEqual(forward.rule, row.rule, "\(row.name): \(forward)")
            XCTAssertTrue(forward.explanation.contains("(rule \(row.rule)"), "\(row.name): \(forward.explanation)")

            let backward = SyncDecider.decide(local: row.peer, peer: row.local, localResolves: !row.localResolves)
            XCTAssertEqual(backward.strategy, row.strategy.mirrored, "\(row.name), mirrored: \(backward)")
            XCTAssertEqual(backward.rule, mirroredRule(row.rule), "\(row.name), mirrored: \(backward)")
        }
    }

    func testEveryRuleIsCoveredFromBothSides() {
        var seen = Set<Int>()
        for row in Self.table {
            seen.insert(row.rule)
            seen.insert(mirroredRule(row.rule))
        }
        XCTAssertEqual(seen, [5, 10, 20, 30, 34, 35, 36, 37, 40, 50, 51, 60, 70, 71, 80, 90, 100])
    }

    func testEveryStrategyAppears() {
        let strategies = Set(Self.table.map(\.strategy)).union(Self.table.map(\.strategy.mirrored))
        let expected: Set<SyncStrategy> = [
            .noSync, .becomeSyncSource(full: true), .becomeSyncSource(full: false),
            .becomeSyncTarget(full: true), .becomeSyncTarget(full: false), .splitBrain,
            .splitBrainUnresolvable, .unrelatedData, .bothInconsistent,
        ]
        XCTAssertEqual(strategies, expected)
    }

    func testRule34CorrectsOurIdentifiers() {
        let local = view(gen(U.a, U.s, U.p, U.q))
        let peer = view(gen(U.a, 0, U.s, U.p))
        let decision = SyncDecider.decide(local: local, peer: peer, localResolves: false)
        XCTAssertEqual(decision.correctedLocal, gen(U.a, 0, U.s, U.p))
        XCTAssertNil(decision.correctedPeer)
        let mirrored = SyncDecider.decide(local: peer, peer: local, localResolves: true)
        XCTAssertEqual(mirrored.rule, 35)
        XCTAssertEqual(mirrored.correctedPeer, gen(U.a, 0, U.s, U.p))
        XCTAssertNil(mirrored.correctedLocal)
    }

    func testRule51And71UndoTheSyncUUID() {
        let target = view(gen(U.a))
        let source = view(gen(U.b | 1, U.a &+ U.off, U.a, U.p), .upToDate, .primary)
        let atTarget = SyncDecider.decide(local: target, peer: source, localResolves: false)
        XCTAssertEqual(atTarget.rule, 51)
        XCTAssertEqual(atTarget.correctedPeer, gen(U.b | 1, U.a, U.p, U.p))
        let atSource = SyncDecider.decide(local: source, peer: target, localResolves: true)
        XCTAssertEqual(atSource.rule, 71)
        XCTAssertEqual(atSource.strategy, .becomeSyncSource(full: false))
        XCTAssertEqual(atSource.correctedLocal, gen(U.b | 1, U.a, U.p, U.p))
    }

    func testRule51NeedsTheOffsetElseHistoryRuleApplies() {
        // Our current is the peer's newest history entry, but its bitmap is not that + offset:
        // DRBD falls through to rule 60 (full sync).
        let decision = SyncDecider.decide(
            local: view(gen(U.a)), peer: view(gen(U.b, U.c, U.a, U.p)), localResolves: false)
        XCTAssertEqual(decision.rule, 60)
        XCTAssertEqual(decision.strategy, .becomeSyncTarget(full: true))
        XCTAssertNil(decision.correctedPeer)
    }

    func testLowBitIsIgnoredEverywhere() {
        // Rule 50 with the role bit set on one side only.
        let decision = SyncDecider.decide(
            local: view(gen(U.a | 1)), peer: view(gen(U.b, U.a)), localResolves: false)
        XCTAssertEqual(decision.rule, 50)
        // Rule 80 with the role bit on the history entry.
        let history = SyncDecider.decide(
            local: view(gen(U.c, 0, U.a | 1)), peer: view(gen(U.a)), localResolves: false)
        XCTAssertEqual(history.rule, 80)
        XCTAssertEqual(history.strategy, .becomeSyncSource(full: true))
    }

    func testSplitBrainExplanationNamesTheChanges() {
        let decision = SyncDecider.decide(
            local: view(gen(U.b | 1, U.a | 1), .upToDate, .primary, blocks: 7),
            peer: view(gen(U.c | 1, U.a | 1), .upToDate, .primary, blocks: 9),
            localResolves: false)
        XCTAssertTrue(decision.explanation.contains("7 blocks"), decision.explanation)
        XCTAssertTrue(decision.explanation.contains("the peer 9"), decision.explanation)
        XCTAssertTrue(decision.explanation.contains("--discard-my-data"), decision.explanation)
    }

    func testNegotiatingCountsAsNoDiskYet() {
        let decision = SyncDecider.decide(
            local: view(gen(U.a), .negotiating), peer: view(gen(U.a)), localResolves: false)
        XCTAssertEqual(decision.strategy, .noSync)
        XCTAssertEqual(decision.rule, SyncDecider.noDiskRule)
    }

    func testDescriptions() {
        XCTAssertEqual(SyncStrategy.becomeSyncSource(full: false).description, "SyncSource (bitmap)")
        XCTAssertEqual(SyncStrategy.becomeSyncTarget(full: true).description, "SyncTarget (full)")
        XCTAssertEqual(SyncStrategy.noSync.description, "no resync")
        let decision = SyncDecider.decide(local: view(gen(U.a)), peer: view(gen(U.a)), localResolves: false)
        XCTAssertTrue(decision.description.hasPrefix("no resync: "), decision.description)
        for row in Self.table {
            let text = SyncDecider.decide(local: row.local, peer: row.peer, localResolves: row.localResolves).explanation
            XCTAssertFalse(text.contains("\n"), row.name)
            XCTAssertLessThan(text.count, 400, row.name)
        }
    }

    func testReplicationStateAfterHandshake() {
        XCTAssertEqual(SyncStrategy.becomeSyncSource(full: true).replicationStateAfterHandshake, .wfBitmapSource)
        XCTAssertEqual(SyncStrategy.becomeSyncTarget(full: false).replicationStateAfterHandshake, .wfBitmapTarget)
        XCTAssertEqual(SyncStrategy.noSync.replicationStateAfterHandshake, .established)
        XCTAssertEqual(SyncStrategy.bothInconsistent.replicationStateAfterHandshake, .established)
        XCTAssertNil(SyncStrategy.splitBrain.replicationStateAfterHandshake)
        XCTAssertNil(SyncStrategy.unrelatedData.replicationStateAfterHandshake)
    }
}
