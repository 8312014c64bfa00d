import RepdCore
import XCTest

// The node running the resolution is "alpha", its peer "beta"; alpha's name sorts first, so
// alpha resolves ties unless a row says otherwise.

private func alpha(
    _ role: Role = .secondary, _ changed: UInt64 = 0, atSplit: Bool = false, discardMyData: Bool = false
) -> SplitBrainSide {
    SplitBrainSide(node: "alpha", role: role, changedBlocks: changed, primaryAtSplit: atSplit, discardMyData: discardMyData)
}

private func beta(
    _ role: Role = .secondary, _ changed: UInt64 = 0, atSplit: Bool = false, discardMyData: Bool = false
) -> SplitBrainSide {
    SplitBrainSide(node: "beta", role: role, changedBlocks: changed, primaryAtSplit: atSplit, discardMyData: discardMyData)
}

private func policies(
    _ zero: AfterSB0Pri = .disconnect, one: AfterSB1Pri = .disconnect, two: AfterSB2Pri = .disconnect, asbp: Bool = false
) -> SplitBrainPolicies {
    SplitBrainPolicies(afterSB0Pri: zero, afterSB1Pri: one, afterSB2Pri: two, alwaysASBP: asbp)
}

final class SplitBrainResolutionTests: XCTestCase {
    struct Row {
        var name: String
        var policies: SplitBrainPolicies
        var kind: SplitBrainKind = .coveredByBitmaps
        var local: SplitBrainSide
        var peer: SplitBrainSide
        var localResolves = true
        var outcome: SplitBrainOutcome
        var decidedBy: SplitBrainDecider
        /// A piece of the explanation that says why.
        var fragment: String
        var fullSync = false
    }

    /// (alpha's changed blocks, beta's): no node changed, only alpha, only beta, both.
    static let changeCases: [(name: String, alpha: UInt64, beta: UInt64)] = [
        ("no node changed", 0, 0), ("only alpha changed", 5, 0), ("only beta changed", 0, 5), ("both changed", 12, 3),
    ]

    /// One row per change case, in the order of `changeCases`.
    static func family(
        _ name: String, _ policies: SplitBrainPolicies, roles: (Role, Role), atSplit: (Bool, Bool) = (false, false),
        decidedBy: SplitBrainDecider, _ expected: [(SplitBrainOutcome, String)]
    ) -> [Row] {
        precondition(expected.count == changeCases.count)
        return zip(changeCases, expected).map { change, expectation in
            Row(
                name: "\(name), \(change.name)", policies: policies,
                local: alpha(roles.0, change.alpha, atSplit: atSplit.0), peer: beta(roles.1, change.beta, atSplit: atSplit.1),
                outcome: expectation.0, decidedBy: decidedBy, fragment: expectation.1)
        }
    }

    static let noAutomaticResolution = "no automatic resolution is configured"
    static let tieAlpha = "the tie-break discards the changes of alpha, the node that resolves conflicts"

    // MARK: after-sb-0pri: neither node is Primary

    static let noPrimaryRows: [Row] = {
        var rows: [Row] = []
        let s = (Role.secondary, Role.secondary)
        rows += family("0pri disconnect", policies(.disconnect), roles: s, decidedBy: .afterSB0Pri(.disconnect), [
            (.disconnect, noAutomaticResolution), (.disconnect, noAutomaticResolution),
            (.disconnect, noAutomaticResolution), (.disconnect, noAutomaticResolution),
        ])
        rows += family(
            "0pri discard-zero-changes", policies(.discardZeroChanges), roles: s, decidedBy: .afterSB0Pri(.discardZeroChanges), [
                (.discardLocal, "neither node changed any block; " + tieAlpha),
                (.discardPeer, "beta changed no blocks, alpha changed 5 blocks; beta's changes (none) are discarded "
                    + "and beta becomes SyncTarget: resync from alpha of the blocks either node changed"),
                (.discardLocal, "alpha changed no blocks, beta changed 5 blocks; alpha's changes (none) are discarded"),
                (.disconnect, "both nodes changed blocks (alpha 12, beta 3)"),
            ])
        rows += family(
            "0pri discard-least-changes", policies(.discardLeastChanges), roles: s,
            decidedBy: .afterSB0Pri(.discardLeastChanges), [
                (.discardLocal, "both nodes changed no blocks; " + tieAlpha),
                (.discardPeer, "beta changed fewer blocks (0) than alpha (5)"),
                (.discardLocal, "alpha changed fewer blocks (0) than beta (5)"),
                (.discardPeer, "beta changed fewer blocks (3) than alpha (12); beta's changes (3 blocks) are discarded"),
            ])
        rows.append(Row(
            name: "0pri discard-least-changes, equal changes", policies: policies(.discardLeastChanges),
            local: alpha(.secondary, 7), peer: beta(.secondary, 7),
            outcome: .discardLocal, decidedBy: .afterSB0Pri(.discardLeastChanges),
            fragment: "both nodes changed 7 blocks; " + tieAlpha))
        rows.append(Row(
            name: "0pri discard-least-changes, equal changes, beta resolves", policies: policies(.discardLeastChanges),
            local: alpha(.secondary, 1), peer: beta(.secondary, 1), localResolves: false,
            outcome: .discardPeer, decidedBy: .afterSB0Pri(.discardLeastChanges),
            fragment: "both nodes changed 1 block; the tie-break discards the changes of beta"))
        rows.append(Row(
            name: "0pri discard-zero-changes, no changes, beta resolves", policies: policies(.discardZeroChanges),
            local: alpha(), peer: beta(), localResolves: false,
            outcome: .discardPeer, decidedBy: .afterSB0Pri(.discardZeroChanges),
            fragment: "neither node changed any block; the tie-break discards the changes of beta"))

        // discard-younger-primary / discard-older-primary: decided by who was Primary at the split,
        // whatever the changes; otherwise discard-least-changes decides.
        let alphaOlder = "alpha was already Primary when the data diverged and beta became Primary only afterwards"
        let betaOlder = "beta was already Primary when the data diverged and alpha became Primary only afterwards"
        rows += family(
            "0pri discard-younger-primary, alpha Primary at the split", policies(.discardYoungerPrimary), roles: s,
            atSplit: (true, false), decidedBy: .afterSB0Pri(.discardYoungerPrimary),
            Array(repeating: (.discardPeer, alphaOlder), count: 4))
        rows += family(
            "0pri discard-younger-primary, beta Primary at the split", policies(.discardYoungerPrimary), roles: s,
            atSplit: (false, true), decidedBy: .afterSB0Pri(.discardYoungerPrimary),
            Array(repeating: (.discardLocal, betaOlder), count: 4))
        rows += family(
            "0pri discard-younger-primary, neither Primary at the split", policies(.discardYoungerPrimary), roles: s,
            decidedBy: .afterSB0Pri(.discardYoungerPrimary), [
                (.discardLocal, "neither node was Primary when the data diverged, so discard-least-changes decides: "
                    + "both nodes changed no blocks; " + tieAlpha),
                (.discardPeer, "so discard-least-changes decides: beta changed fewer blocks (0) than alpha (5)"),
                (.discardLocal, "so discard-least-changes decides: alpha changed fewer blocks (0) than beta (5)"),
                (.discardPeer, "so discard-least-changes decides: beta changed fewer blocks (3) than alpha (12)"),
            ])
        rows += family(
            "0pri discard-younger-primary, both Primary at the split", policies(.discardYoungerPrimary), roles: s,
            atSplit: (true, true), decidedBy: .afterSB0Pri(.discardYoungerPrimary), [
                (.discardLocal, "both nodes were Primary when the data diverged, so discard-least-changes decides: "
                    + "both nodes changed no blocks"),
                (.discardPeer, "both nodes were Primary when the data diverged, so discard-least-changes decides"),
                (.discardLocal, "alpha changed fewer blocks (0) than beta (5)"),
                (.discardPeer, "beta changed fewer blocks (3) than alpha (12)"),
            ])
        rows += family(
            "0pri discard-older-primary, alpha Primary at the split", policies(.discardOlderPrimary), roles: s,
            atSplit: (true, false), decidedBy: .afterSB0Pri(.discardOlderPrimary),
            Array(repeating: (.discardLocal, alphaOlder), count: 4))
        rows += family(
            "0pri discard-older-primary, beta Primary at the split", policies(.discardOlderPrimary), roles: s,
            atSplit: (false, true), decidedBy: .afterSB0Pri(.discardOlderPrimary),
            Array(repeating: (.discardPeer, betaOlder), count: 4))
        rows += family(
            "0pri discard-older-primary, neither Primary at the split", policies(.discardOlderPrimary), roles: s,
            decidedBy: .afterSB0Pri(.discardOlderPrimary), [
                (.discardLocal, "neither node was Primary when the data diverged, so discard-least-changes decides"),
                (.discardPeer, "beta changed fewer blocks (0) than alpha (5)"),
                (.discardLocal, "alpha changed fewer blocks (0) than beta (5)"),
                (.discardPeer, "beta changed fewer blocks (3) than alpha (12)"),
            ])
        rows.append(Row(
            name: "0pri discard-older-primary, both Primary at the split, equal changes, beta resolves",
            policies: policies(.discardOlderPrimary),
            local: alpha(.secondary, 4, atSplit: true), peer: beta(.secondary, 4, atSplit: true), localResolves: false,
            outcome: .discardPeer, decidedBy: .afterSB0Pri(.discardOlderPrimary),
            fragment: "both nodes were Primary when the data diverged, so discard-least-changes decides: both nodes "
                + "changed 4 blocks; the tie-break discards the changes of beta"))

        rows += family(
            "0pri discard-node-alpha", policies(.discardNode("alpha")), roles: s,
            decidedBy: .afterSB0Pri(.discardNode("alpha")),
            Array(repeating: (.discardLocal, "the configuration always discards the changes of alpha"), count: 4))
        rows += family(
            "0pri discard-node-beta", policies(.discardNode("beta")), roles: s,
            decidedBy: .afterSB0Pri(.discardNode("beta")),
            Array(repeating: (.discardPeer, "the configuration always discards the changes of beta"), count: 4))
        rows += family(
            "0pri discard-node-gamma", policies(.discardNode("gamma")), roles: s,
            decidedBy: .afterSB0Pri(.discardNode("gamma")),
            Array(repeating: (.disconnect, "it names gamma, which is neither alpha nor beta"), count: 4))
        return rows
    }()

    // MARK: after-sb-1pri: one Primary (after-sb-0pri discard-zero-changes underneath)

    static let onePrimaryRows: [Row] = {
        var rows: [Row] = []
        let alphaPrimary = (Role.primary, Role.secondary)
        let betaPrimary = (Role.secondary, Role.primary)
        let aRoles = "alpha is Primary, beta Secondary"
        let bRoles = "beta is Primary, alpha Secondary"
        let zero = "after-sb-0pri discard-zero-changes"

        for (roles, text) in [(alphaPrimary, aRoles), (betaPrimary, bRoles)] {
            rows += family(
                "1pri disconnect, \(text)", policies(.discardZeroChanges, one: .disconnect), roles: roles,
                decidedBy: .afterSB1Pri(.disconnect),
                Array(repeating: (.disconnect, "\(text); \(noAutomaticResolution)"), count: 4))
        }

        rows += family(
            "1pri consensus, alpha Primary", policies(.discardZeroChanges, one: .consensus), roles: alphaPrimary,
            decidedBy: .afterSB1Pri(.consensus), [
                (.disconnect, "\(aRoles), but \(zero) would discard the Primary's changes (neither node changed any "
                    + "block; \(tieAlpha)"),
                (.discardPeer, "\(aRoles), and \(zero) also discards the Secondary's changes: beta changed no blocks"),
                (.disconnect, "but \(zero) would discard the Primary's changes (alpha changed no blocks, beta changed "
                    + "5 blocks), so there is no consensus"),
                (.disconnect, "\(aRoles), and \(zero) decides nothing (both nodes changed blocks (alpha 12, beta 3)), "
                    + "so there is no consensus"),
            ])
        rows += family(
            "1pri consensus, beta Primary", policies(.discardZeroChanges, one: .consensus), roles: betaPrimary,
            decidedBy: .afterSB1Pri(.consensus), [
                (.discardLocal, "\(bRoles), and \(zero) also discards the Secondary's changes: neither node changed"),
                (.disconnect, "\(bRoles), but \(zero) would discard the Primary's changes (beta changed no blocks"),
                (.discardLocal, "\(zero) also discards the Secondary's changes: alpha changed no blocks"),
                (.disconnect, "\(zero) decides nothing"),
            ])
        rows += family(
            "1pri violently-as0p, alpha Primary", policies(.discardZeroChanges, one: .violentlyAs0p), roles: alphaPrimary,
            decidedBy: .afterSB1Pri(.violentlyAs0p), [
                (.discardLocal, "\(aRoles); \(zero) decides even against the Primary: neither node changed any block"),
                (.discardPeer, "\(aRoles); \(zero) decides even against the Primary: beta changed no blocks"),
                (.discardLocal, "alpha is Primary: rr-conflict decides whether it may become SyncTarget"),
                (.disconnect, "both nodes changed blocks"),
            ])
        rows += family(
            "1pri violently-as0p, beta Primary", policies(.discardZeroChanges, one: .violentlyAs0p), roles: betaPrimary,
            decidedBy: .afterSB1Pri(.violentlyAs0p), [
                (.discardLocal, "\(bRoles); \(zero) decides even against the Primary: neither node changed any block"),
                (.discardPeer, "beta is Primary: rr-conflict decides whether it may become SyncTarget"),
                (.discardLocal, "alpha changed no blocks, beta changed 5 blocks"),
                (.disconnect, "both nodes changed blocks"),
            ])
        rows += family(
            "1pri discard-secondary, alpha Primary", policies(.discardZeroChanges, one: .discardSecondary),
            roles: alphaPrimary, decidedBy: .afterSB1Pri(.discardSecondary),
            Array(repeating: (.discardPeer, "after-sb-1pri discard-secondary: \(aRoles); beta's changes"), count: 4))
        rows += family(
            "1pri discard-secondary, beta Primary", policies(.discardZeroChanges, one: .discardSecondary),
            roles: betaPrimary, decidedBy: .afterSB1Pri(.discardSecondary),
            Array(repeating: (.discardLocal, "after-sb-1pri discard-secondary: \(bRoles); alpha's changes"), count: 4))
        rows += family(
            "1pri call-pri-lost-after-sb, alpha Primary", policies(.discardZeroChanges, one: .callPriLostAfterSB),
            roles: alphaPrimary, decidedBy: .afterSB1Pri(.callPriLostAfterSB), [
                (.callPriLost(node: "alpha"), "alpha is Primary and must become Secondary first"),
                (.discardPeer, "\(aRoles); \(zero) decides: beta changed no blocks"),
                (.callPriLost(node: "alpha"), "pri-lost-after-sb handler runs on it and the nodes disconnect"),
                (.disconnect, "both nodes changed blocks"),
            ])
        rows += family(
            "1pri call-pri-lost-after-sb, beta Primary", policies(.discardZeroChanges, one: .callPriLostAfterSB),
            roles: betaPrimary, decidedBy: .afterSB1Pri(.callPriLostAfterSB), [
                (.discardLocal, "\(bRoles); \(zero) decides: neither node changed any block"),
                (.callPriLost(node: "beta"), "beta is Primary and must become Secondary first"),
                (.discardLocal, "alpha changed no blocks"),
                (.disconnect, "both nodes changed blocks"),
            ])

        // consensus over other after-sb-0pri policies.
        rows.append(Row(
            name: "1pri consensus over 0pri discard-least-changes", policies: policies(.discardLeastChanges, one: .consensus),
            local: alpha(.primary, 12), peer: beta(.secondary, 3),
            outcome: .discardPeer, decidedBy: .afterSB1Pri(.consensus),
            fragment: "after-sb-0pri discard-least-changes also discards the Secondary's changes: beta changed fewer"))
        rows.append(Row(
            name: "1pri consensus over 0pri disconnect", policies: policies(.disconnect, one: .consensus),
            local: alpha(.primary, 12), peer: beta(.secondary, 0),
            outcome: .disconnect, decidedBy: .afterSB1Pri(.consensus),
            fragment: "after-sb-0pri disconnect decides nothing (\(noAutomaticResolution))"))
        rows.append(Row(
            name: "1pri consensus over 0pri discard-younger-primary", policies: policies(.discardYoungerPrimary, one: .consensus),
            local: alpha(.secondary, 40, atSplit: false), peer: beta(.primary, 2, atSplit: true),
            outcome: .discardLocal, decidedBy: .afterSB1Pri(.consensus),
            fragment: "also discards the Secondary's changes: beta was already Primary when the data diverged"))
        rows.append(Row(
            name: "1pri call-pri-lost-after-sb over 0pri discard-node-beta",
            policies: policies(.discardNode("beta"), one: .callPriLostAfterSB),
            local: alpha(.secondary, 40), peer: beta(.primary, 2),
            outcome: .callPriLost(node: "beta"), decidedBy: .afterSB1Pri(.callPriLostAfterSB),
            fragment: "the configuration always discards the changes of beta; beta's changes (2 blocks) are discarded. "
                + "beta is Primary and must become Secondary first"))
        return rows
    }()

    // MARK: after-sb-2pri: both Primary (after-sb-0pri discard-zero-changes underneath)

    static let twoPrimaryRows: [Row] = {
        var rows: [Row] = []
        let p = (Role.primary, Role.primary)
        rows += family(
            "2pri disconnect", policies(.discardZeroChanges, two: .disconnect), roles: p,
            decidedBy: .afterSB2Pri(.disconnect),
            Array(repeating: (.disconnect, "both nodes are Primary; \(noAutomaticResolution)"), count: 4))
        rows += family(
            "2pri violently-as0p", policies(.discardZeroChanges, two: .violentlyAs0p), roles: p,
            decidedBy: .afterSB2Pri(.violentlyAs0p), [
                (.discardLocal, "after-sb-0pri discard-zero-changes decides even against a Primary: neither node changed"),
                (.discardPeer, "beta is Primary: rr-conflict decides whether it may become SyncTarget"),
                (.discardLocal, "alpha is Primary: rr-conflict decides whether it may become SyncTarget"),
                (.disconnect, "both nodes changed blocks"),
            ])
        rows += family(
            "2pri call-pri-lost-after-sb", policies(.discardZeroChanges, two: .callPriLostAfterSB), roles: p,
            decidedBy: .afterSB2Pri(.callPriLostAfterSB), [
                (.callPriLost(node: "alpha"), "neither node changed any block; \(tieAlpha)"),
                (.callPriLost(node: "beta"), "beta changed no blocks, alpha changed 5 blocks"),
                (.callPriLost(node: "alpha"), "alpha is Primary and must become Secondary first"),
                (.disconnect, "both nodes changed blocks"),
            ])
        return rows
    }()

    // MARK: discard-my-data, rule 100 and always-asbp

    static let operatorAndRule100Rows: [Row] = [
        Row(
            name: "discard-my-data on alpha beats the policy", policies: policies(.discardNode("beta")),
            local: alpha(.secondary, 3, discardMyData: true), peer: beta(.secondary, 9),
            outcome: .discardLocal, decidedBy: .discardMyData,
            fragment: "discard-my-data: alpha was connected with --discard-my-data; alpha's changes (3 blocks) are "
                + "discarded and alpha becomes SyncTarget: resync from beta of the blocks either node changed"),
        Row(
            name: "discard-my-data on beta beats the policy", policies: policies(.discardLeastChanges),
            local: alpha(.secondary, 3), peer: beta(.secondary, 9, discardMyData: true),
            outcome: .discardPeer, decidedBy: .discardMyData, fragment: "beta was connected with --discard-my-data"),
        Row(
            name: "discard-my-data on both", policies: policies(.discardZeroChanges),
            local: alpha(.secondary, 0, discardMyData: true), peer: beta(.secondary, 9, discardMyData: true),
            outcome: .disconnect, decidedBy: .discardMyData,
            fragment: "both alpha and beta were connected with --discard-my-data, so neither can be the source"),
        Row(
            name: "discard-my-data on a Primary", policies: policies(one: .discardSecondary),
            local: alpha(.primary, 3, discardMyData: true), peer: beta(.secondary, 9),
            outcome: .discardLocal, decidedBy: .discardMyData,
            fragment: "alpha is Primary: rr-conflict decides whether it may become SyncTarget"),
        Row(
            name: "discard-my-data, rule 100: full resync", policies: policies(),
            kind: .notCoveredByBitmaps,
            local: alpha(.secondary, 3), peer: beta(.secondary, 9, discardMyData: true),
            outcome: .discardPeer, decidedBy: .discardMyData, fragment: "full resync from alpha", fullSync: true),
        Row(
            name: "rule 100 without always-asbp", policies: policies(.discardZeroChanges),
            kind: .notCoveredByBitmaps, local: alpha(.secondary, 0), peer: beta(.secondary, 9),
            outcome: .disconnect, decidedBy: .noPolicyApplies,
            fragment: "no bitmap covers both nodes' changes (rule 100) and always-asbp is off"),
        Row(
            name: "rule 100 with always-asbp: the policy decides, full resync",
            policies: policies(.discardZeroChanges, asbp: true),
            kind: .notCoveredByBitmaps, local: alpha(.secondary, 0), peer: beta(.secondary, 9),
            outcome: .discardLocal, decidedBy: .afterSB0Pri(.discardZeroChanges),
            fragment: "alpha changed no blocks, beta changed 9 blocks (always-asbp applied the policy to a split "
                + "brain no bitmap covers, rule 100); alpha's changes (none) are discarded and alpha becomes "
                + "SyncTarget: full resync from beta",
            fullSync: true),
        Row(
            name: "rule 100 with always-asbp, the policy decides nothing",
            policies: policies(.discardZeroChanges, one: .discardSecondary, asbp: true),
            kind: .notCoveredByBitmaps, local: alpha(.secondary, 4), peer: beta(.secondary, 9),
            outcome: .disconnect, decidedBy: .afterSB0Pri(.discardZeroChanges),
            fragment: "both nodes changed blocks (alpha 4, beta 9) (always-asbp applied"),
        Row(
            name: "rule 100 with always-asbp, one Primary",
            policies: policies(one: .discardSecondary, asbp: true),
            kind: .notCoveredByBitmaps, local: alpha(.secondary, 4), peer: beta(.primary, 9),
            outcome: .discardLocal, decidedBy: .afterSB1Pri(.discardSecondary),
            fragment: "full resync from beta", fullSync: true),
        Row(
            name: "rule 90 with always-asbp is as without", policies: policies(.discardLeastChanges, asbp: true),
            local: alpha(.secondary, 4), peer: beta(.secondary, 9),
            outcome: .discardLocal, decidedBy: .afterSB0Pri(.discardLeastChanges),
            fragment: "resync from beta of the blocks either node changed"),
        Row(
            name: "a role of Unknown counts as Secondary", policies: policies(.discardZeroChanges, one: .discardSecondary),
            local: alpha(.unknown, 4), peer: beta(.secondary, 0),
            outcome: .discardPeer, decidedBy: .afterSB0Pri(.discardZeroChanges), fragment: "beta changed no blocks"),
    ]

    static var table: [Row] { noPrimaryRows + onePrimaryRows + twoPrimaryRows + operatorAndRule100Rows }

    static func resolve(_ row: Row, mirrored: Bool = false) -> SplitBrainResolution {
        mirrored
            ? SplitBrainResolver.resolve(
                row.kind, local: row.peer, peer: row.local, policies: row.policies, localResolves: !row.localResolves)
            : SplitBrainResolver.resolve(
                row.kind, local: row.local, peer: row.peer, policies: row.policies, localResolves: row.localResolves)
    }

    func testTable() {
        XCTAssertGreaterThan(Self.table.count, 100)
        for row in Self.table {
            let result = Self.resolve(row)
            XCTAssertEqual(result.outcome, row.outcome, "\(row.name): \(result)")
            XCTAssertEqual(result.decidedBy, row.decidedBy, "\(row.name): \(result)")
            XCTAssertTrue(
                result.explanation.contains(row.fragment),
                "\(row.name):\n  explanation: \(result.explanation)\n  expected to contain: \(row.fragment)")
            XCTAssertTrue(
                result.explanation.hasPrefix("\(row.decidedBy)"), "\(row.name): \(result.explanation)")
            XCTAssertEqual(result.fullSync, row.fullSync, "\(row.name)")
            let expectedHandlers: [PolicyHandler] = row.outcome == .disconnect
                ? [.initialSplitBrain, .splitBrain] : [.initialSplitBrain]
            XCTAssertEqual(result.handlers, expectedHandlers, "\(row.name)")
            XCTAssertEqual(result.localNode, "alpha")
        }
    }

    /// Both nodes run the resolution: swapping the sides and the tie-breaker mirrors the outcome,
    /// and both log the same words.
    func testTableIsSymmetric() {
        for row in Self.table {
            let here = Self.resolve(row)
            let there = Self.resolve(row, mirrored: true)
            assertMirrored(here, there, row.name)
        }
    }

    /// Symmetry over every combination of policies, roles, changes, roles at the split, tie-breaker,
    /// kind and always-asbp (only the policies the roles consult are varied), then of
    /// discard-my-data, not only the table's.
    func testSymmetryExhaustively() {
        let zeroPolicies = AfterSB0Pri.fixedCases + [.discardNode("alpha"), .discardNode("beta"), .discardNode("gamma")]
        let roles: [Role] = [.secondary, .primary, .unknown]
        let changes: [UInt64] = [0, 3, 7]
        let flags = [false, true]
        var count = 0
        func check(_ policies: SplitBrainPolicies, _ local: SplitBrainSide, _ peer: SplitBrainSide) {
            for kind in [SplitBrainKind.coveredByBitmaps, .notCoveredByBitmaps] {
                for localResolves in flags {
                    let here = SplitBrainResolver.resolve(
                        kind, local: local, peer: peer, policies: policies, localResolves: localResolves)
                    let there = SplitBrainResolver.resolve(
                        kind, local: peer, peer: local, policies: policies, localResolves: !localResolves)
                    assertMirrored(here, there, "\(policies) \(kind) \(local) \(peer) \(localResolves)")
                    count += 1
                }
            }
        }
        for (localRole, peerRole) in pairs(roles) {
            let primaries = [localRole, peerRole].filter { $0 == .primary }.count
            var consulted: [SplitBrainPolicies] = []
            for zero in zeroPolicies {
                switch primaries {
                case 0: consulted.append(policies(zero))
                case 1: consulted += AfterSB1Pri.allCases.map { policies(zero, one: $0) }
                default: consulted += AfterSB2Pri.allCases.map { policies(zero, two: $0) }
                }
            }
            for base in consulted {
                for asbp in flags {
                    var rules = base
                    rules.alwaysASBP = asbp
                    for (localChanged, peerChanged) in pairs(changes) {
                        for (localAtSplit, peerAtSplit) in pairs(flags) {
                            check(
                                rules, alpha(localRole, localChanged, atSplit: localAtSplit),
                                beta(peerRole, peerChanged, atSplit: peerAtSplit))
                        }
                    }
                }
            }
            for (localDiscards, peerDiscards) in pairs(flags) {
                for rules in [policies(), policies(.discardNode("alpha"), one: .discardSecondary, two: .violentlyAs0p)] {
                    check(
                        rules, alpha(localRole, 3, atSplit: true, discardMyData: localDiscards),
                        beta(peerRole, 7, discardMyData: peerDiscards))
                }
            }
        }
        // (4 role pairs with no Primary x 8 + 4 with one x 8 x 5 + 1 with two x 8 x 3) policy sets,
        // x 2 always-asbp x 9 changes x 4 roles at the split, plus 9 role pairs x 4 x 2 with
        // discard-my-data; each x 2 kinds x 2 tie-breakers.
        XCTAssertEqual(count, ((4 * 8 + 4 * 40 + 24) * 2 * 9 * 4 + 9 * 4 * 2) * 4)
    }

    private func pairs<T>(_ values: [T]) -> [(T, T)] {
        values.flatMap { a in values.map { b in (a, b) } }
    }

    private func assertMirrored(
        _ here: SplitBrainResolution, _ there: SplitBrainResolution, _ name: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard here.outcome.mirrored != there.outcome || here.decidedBy != there.decidedBy
            || here.fullSync != there.fullSync || here.explanation != there.explanation
            || here.handlers != there.handlers || here.strategy.mirrored != there.strategy
        else { return }
        XCTFail("not mirrored: \(name)\n  here:  \(here)\n  there: \(there)", file: file, line: line)
    }

    // MARK: Using the result

    func testStrategies() {
        func strategy(_ row: Row) -> SyncStrategy { Self.resolve(row).strategy }
        let zero = Self.noPrimaryRows
        let discardLocal = zero.first { $0.outcome == .discardLocal }!
        let discardPeer = zero.first { $0.outcome == .discardPeer }!
        let disconnect = zero.first { $0.outcome == .disconnect }!
        XCTAssertEqual(strategy(discardLocal), .becomeSyncTarget(full: false))
        XCTAssertEqual(strategy(discardPeer), .becomeSyncSource(full: false))
        XCTAssertEqual(strategy(disconnect), .splitBrain)
        let rule100 = Self.operatorAndRule100Rows.first { $0.name == "rule 100 without always-asbp" }!
        XCTAssertEqual(strategy(rule100), .splitBrainUnresolvable)
        let full = Self.operatorAndRule100Rows.first { $0.name.hasPrefix("rule 100 with always-asbp: the policy") }!
        XCTAssertEqual(strategy(full), .becomeSyncTarget(full: true))
        XCTAssertEqual(SplitBrainKind(.splitBrain), .coveredByBitmaps)
        XCTAssertEqual(SplitBrainKind(.splitBrainUnresolvable), .notCoveredByBitmaps)
        XCTAssertNil(SplitBrainKind(.unrelatedData))
        XCTAssertNil(SplitBrainKind(.becomeSyncTarget(full: true)))
        XCTAssertEqual(SplitBrainKind.notCoveredByBitmaps.strategy, .splitBrainUnresolvable)
    }

    func testCallPriLostOnTheLosingPrimary() {
        let resolution = SplitBrainResolver.resolve(
            .coveredByBitmaps, local: alpha(.primary, 2), peer: beta(.primary, 0),
            policies: policies(.discardLeastChanges, two: .callPriLostAfterSB), localResolves: true)
        XCTAssertEqual(resolution.outcome, .callPriLost(node: "beta"))
        XCTAssertFalse(resolution.localMustDemote)
        XCTAssertEqual(resolution.strategy, .becomeSyncSource(full: false))
        XCTAssertEqual(resolution.afterDemotion(succeeded: false), resolution, "only the losing Primary demotes")

        let atBeta = SplitBrainResolver.resolve(
            .coveredByBitmaps, local: beta(.primary, 0), peer: alpha(.primary, 2),
            policies: policies(.discardLeastChanges, two: .callPriLostAfterSB), localResolves: false)
        XCTAssertTrue(atBeta.localMustDemote)
        XCTAssertEqual(atBeta.strategy, .becomeSyncTarget(full: false))
        XCTAssertEqual(atBeta.handlers, [.initialSplitBrain])

        let demoted = atBeta.afterDemotion(succeeded: true)
        XCTAssertEqual(demoted.outcome, .discardLocal)
        XCTAssertEqual(demoted.strategy, .becomeSyncTarget(full: false))
        XCTAssertEqual(demoted.handlers, [.initialSplitBrain])
        XCTAssertTrue(demoted.explanation.hasSuffix("beta became Secondary and resyncs."), demoted.explanation)

        let stuck = atBeta.afterDemotion(succeeded: false)
        XCTAssertEqual(stuck.outcome, .disconnect)
        XCTAssertEqual(stuck.strategy, .splitBrain)
        XCTAssertEqual(stuck.handlers, [.initialSplitBrain, .priLostAfterSB, .splitBrain])
        XCTAssertTrue(stuck.explanation.contains("beta could not become Secondary"), stuck.explanation)
    }

    func testDescriptions() {
        XCTAssertEqual(SplitBrainDecider.afterSB0Pri(.discardNode("x")).description, "after-sb-0pri discard-node-x")
        XCTAssertEqual(SplitBrainDecider.afterSB1Pri(.callPriLostAfterSB).description, "after-sb-1pri call-pri-lost-after-sb")
        XCTAssertEqual(SplitBrainDecider.afterSB2Pri(.violentlyAs0p).description, "after-sb-2pri violently-as0p")
        XCTAssertEqual(PolicyHandler.allCases.map(\.rawValue), ["initial-split-brain", "split-brain", "pri-lost-after-sb", "pri-lost"])
        XCTAssertEqual(SplitBrainOutcome.callPriLost(node: "x").mirrored, .callPriLost(node: "x"))
        XCTAssertEqual(SplitBrainOutcome.disconnect.mirrored, .disconnect)
        XCTAssertEqual(SplitBrainOutcome.discardLocal.mirrored, .discardPeer)
    }

    /// The example the brief asked for, word for word.
    func testZeroChangesExplanation() {
        let resolution = SplitBrainResolver.resolve(
            .coveredByBitmaps, local: beta(.secondary, 0), peer: alpha(.secondary, 12),
            policies: policies(.discardZeroChanges), localResolves: false)
        XCTAssertEqual(
            resolution.explanation,
            "after-sb-0pri discard-zero-changes: beta changed no blocks, alpha changed 12 blocks; beta's changes (none) "
                + "are discarded and beta becomes SyncTarget: resync from alpha of the blocks either node changed.")
        XCTAssertEqual(resolution.outcome, .discardLocal)
    }

    // MARK: From the generation identifiers to the resolution

    /// Docs/Resync.md's worked example, step 9: alpha was Primary when the link failed and kept
    /// writing; bravo was promoted alone later. Both reach the same split brain (rule 90) and
    /// discard-younger-primary discards bravo's changes, seen from either node.
    func testWorkedExampleFromGenerations() {
        let y: UInt64 = 0x5959_0000_0000_0050
        let z: UInt64 = 0x6A6A_0000_0000_0060
        let w: UInt64 = 0x7B7B_0000_0000_0070
        var shared = GenerationIdentifiers(current: y, bitmap: 0, history: [0x11, 0x22])
        shared.recordRole(primary: false)

        var atAlpha = shared
        atAlpha.recordRole(primary: true)            // alpha is promoted while connected
        atAlpha.startNewCurrent(z, primary: true)   // ... and loses its peer
        var atBravo = shared
        atBravo.startNewCurrent(w, primary: true)   // bravo is promoted alone
        XCTAssertTrue(atAlpha.primaryWhenBitmapStarted)
        XCTAssertFalse(atBravo.primaryWhenBitmapStarted)

        let alphaView = SyncView(generation: atAlpha, disk: .upToDate, role: .secondary, outOfSyncBlocks: 30)
        let bravoView = SyncView(generation: atBravo, disk: .upToDate, role: .secondary, outOfSyncBlocks: 500)
        let decision = SyncDecider.decide(local: alphaView, peer: bravoView, localResolves: true)
        XCTAssertEqual(decision.rule, 90)
        let kind = SplitBrainKind(decision.strategy)!

        let rules = policies(.discardYoungerPrimary)
        let here = SplitBrainResolver.resolve(
            kind, local: SplitBrainSide(node: "alpha", view: alphaView), peer: SplitBrainSide(node: "bravo", view: bravoView),
            policies: rules, localResolves: true)
        let there = SplitBrainResolver.resolve(
            kind, local: SplitBrainSide(node: "bravo", view: bravoView), peer: SplitBrainSide(node: "alpha", view: alphaView),
            policies: rules, localResolves: false)
        XCTAssertEqual(here.outcome, .discardPeer)
        XCTAssertEqual(there.outcome, .discardLocal)
        XCTAssertEqual(here.explanation, there.explanation)
        XCTAssertTrue(here.explanation.contains(
            "alpha was already Primary when the data diverged and bravo became Primary only afterwards; bravo's "
                + "changes (500 blocks) are discarded"), here.explanation)

        // discard-least-changes on the same facts discards alpha's fewer changes instead.
        let least = SplitBrainResolver.resolve(
            kind, local: SplitBrainSide(node: "alpha", view: alphaView), peer: SplitBrainSide(node: "bravo", view: bravoView),
            policies: policies(.discardLeastChanges), localResolves: true)
        XCTAssertEqual(least.outcome, .discardLocal)
    }

    func testSideFromSyncView() {
        let view = SyncView(
            generation: GenerationIdentifiers(current: 0xA1, bitmap: 0xB3), disk: .upToDate, role: .primary,
            outOfSyncBlocks: 17)
        let side = SplitBrainSide(node: "n", view: view, discardMyData: true)
        XCTAssertEqual(side, SplitBrainSide(node: "n", role: .primary, changedBlocks: 17, primaryAtSplit: true, discardMyData: true))
        let clear = SplitBrainSide(node: "n", view: SyncView(generation: GenerationIdentifiers(current: 0xA1, bitmap: 0xB2), disk: .upToDate))
        XCTAssertFalse(clear.primaryAtSplit)
        XCTAssertFalse(clear.discardMyData)
    }

    func testRecordRole() {
        var generation = GenerationIdentifiers(current: 0xA0, bitmap: 0)
        generation.recordRole(primary: true)
        XCTAssertEqual(generation.current, 0xA1)
        generation.recordRole(primary: true)
        XCTAssertEqual(generation.current, 0xA1)
        generation.recordRole(primary: false)
        XCTAssertEqual(generation.current, 0xA0)
        XCTAssertEqual(generation.bitmap, 0)
    }
}

// MARK: - rr-conflict

final class RRConflictResolutionTests: XCTestCase {
    struct Row {
        var name: String
        var policy: RRConflict
        var strategy: SyncStrategy
        var role: Role
        var disk: DiskState
        var outcome: RRConflictOutcome
        var handlers: [PolicyHandler] = []
        var fragment: String = ""
    }

    static let target = SyncStrategy.becomeSyncTarget(full: false)
    static let conflict = "alpha is Primary with UpToDate data, but the resync decision makes it SyncTarget "
        + "(bitmap-based resync from the peer)"

    static let table: [Row] = {
        var rows: [Row] = [
            Row(name: "disconnect", policy: .disconnect, strategy: target, role: .primary, disk: .upToDate,
                outcome: .disconnect,
                fragment: "rr-conflict disconnect: \(conflict); the nodes disconnect (StandAlone): make alpha Secondary"),
            Row(name: "retry-connect", policy: .retryConnect, strategy: target, role: .primary, disk: .upToDate,
                outcome: .retryConnect, fragment: "rr-conflict retry-connect: \(conflict); the connection is dropped and tried again"),
            Row(name: "violently", policy: .violently, strategy: target, role: .primary, disk: .upToDate,
                outcome: .becomeSyncTarget, fragment: "rr-conflict violently: \(conflict); it becomes SyncTarget anyway"),
            Row(name: "call-pri-lost", policy: .callPriLost, strategy: target, role: .primary, disk: .upToDate,
                outcome: .disconnect, handlers: [.priLost],
                fragment: "rr-conflict call-pri-lost: \(conflict); the pri-lost handler runs on alpha"),
            Row(name: "full resync, Consistent disk", policy: .disconnect, strategy: .becomeSyncTarget(full: true),
                role: .primary, disk: .consistent, outcome: .disconnect,
                fragment: "alpha is Primary with Consistent data, but the resync decision makes it SyncTarget (full resync"),
        ]
        // No conflict, whatever the policy.
        for policy in RRConflict.allCases {
            rows += [
                Row(name: "\(policy) SyncSource", policy: policy, strategy: .becomeSyncSource(full: false), role: .primary,
                    disk: .upToDate, outcome: .noConflict),
                Row(name: "\(policy) no sync", policy: policy, strategy: .noSync, role: .primary, disk: .upToDate,
                    outcome: .noConflict),
                Row(name: "\(policy) split brain", policy: policy, strategy: .splitBrain, role: .primary, disk: .upToDate,
                    outcome: .noConflict),
                Row(name: "\(policy) Secondary target", policy: policy, strategy: target, role: .secondary, disk: .upToDate,
                    outcome: .noConflict),
                Row(name: "\(policy) Inconsistent Primary target", policy: policy, strategy: .becomeSyncTarget(full: true),
                    role: .primary, disk: .inconsistent, outcome: .noConflict),
                Row(name: "\(policy) Outdated Primary target", policy: policy, strategy: target,
                    role: .primary, disk: .outdated, outcome: .noConflict),
                Row(name: "\(policy) Diskless Primary", policy: policy, strategy: target, role: .primary, disk: .diskless,
                    outcome: .noConflict),
            ]
        }
        return rows
    }()

    func testTable() {
        for row in Self.table {
            let result = RRConflictResolver.resolve(row.policy, strategy: row.strategy, node: "alpha", role: row.role, disk: row.disk)
            XCTAssertEqual(result.outcome, row.outcome, row.name)
            XCTAssertEqual(result.handlers, row.handlers, row.name)
            if row.outcome == .noConflict {
                XCTAssertEqual(result.explanation, "", row.name)
            } else {
                XCTAssertTrue(result.explanation.contains(row.fragment), "\(row.name): \(result.explanation)")
            }
        }
    }

    /// A split-brain resolution that discards a Primary's changes goes through rr-conflict.
    func testAfterSplitBrainResolution() {
        let resolution = SplitBrainResolver.resolve(
            .coveredByBitmaps,
            local: SplitBrainSide(node: "alpha", role: .primary, changedBlocks: 1, primaryAtSplit: true),
            peer: SplitBrainSide(node: "beta", role: .secondary, changedBlocks: 9, primaryAtSplit: false),
            policies: SplitBrainPolicies(afterSB0Pri: .discardLeastChanges, afterSB1Pri: .violentlyAs0p),
            localResolves: true)
        XCTAssertEqual(resolution.outcome, .discardLocal)
        let check = RRConflictResolver.resolve(
            .disconnect, strategy: resolution.strategy, node: "alpha", role: .primary, disk: .upToDate)
        XCTAssertEqual(check.outcome, .disconnect)
    }
}
