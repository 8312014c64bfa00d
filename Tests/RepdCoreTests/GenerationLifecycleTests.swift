import RepdCore
import XCTest

final class GenerationLifecycleTests: XCTestCase {
    let x: UInt64 = 0x1111_2222_3333_4440
    let y: UInt64 = 0x5555_6666_7777_8880
    let z: UInt64 = 0x9999_AAAA_BBBB_CCC0
    let w: UInt64 = 0xDDDD_EEEE_FFFF_0000
    let h0: UInt64 = 0x0101_0101_0101_0100
    let h1: UInt64 = 0x0202_0202_0202_0200
    let off = GenerationIdentifiers.syncUUIDOffset

    func fresh() -> GenerationIdentifiers { GenerationIdentifiers(current: GenerationIdentifiers.justCreated) }

    // MARK: - Single operations

    func testStartNewCurrentMovesOldCurrentIntoEmptyBitmapSlot() {
        var g = GenerationIdentifiers(current: x | 1, bitmap: 0, history: [h0, h1])
        g.startNewCurrent(y, primary: true)
        XCTAssertEqual(g, GenerationIdentifiers(current: y | 1, bitmap: x | 1, history: [h0, h1]))
        XCTAssertEqual(g.currentIgnoringRole, y)

        var secondary = GenerationIdentifiers(current: x, history: [h0, h1])
        secondary.startNewCurrent(y | 1, primary: false)
        XCTAssertEqual(secondary.current, y, "the role bit follows `primary`, not the value passed")
        XCTAssertEqual(secondary.bitmap, x)
    }

    func testStartNewCurrentKeepsAnExistingBitmapUUID() {
        var g = GenerationIdentifiers(current: y | 1, bitmap: x | 1, history: [h0, h1])
        g.startNewCurrent(z, primary: true)
        XCTAssertEqual(g, GenerationIdentifiers(current: z | 1, bitmap: x | 1, history: [h0, h1]))
    }

    func testStartNewCurrentFromJustCreated() {
        var g = fresh()
        g.startNewCurrent(x, primary: true)
        XCTAssertEqual(g, GenerationIdentifiers(current: x | 1, bitmap: GenerationIdentifiers.justCreated))
    }

    func testStartTracking() {
        var g = GenerationIdentifiers(current: x, history: [h0, h1])
        g.startTracking()
        XCTAssertEqual(g, GenerationIdentifiers(current: x, bitmap: x, history: [h0, h1]))
        g.current = y
        g.startTracking()
        XCTAssertEqual(g.bitmap, x, "an existing bitmap UUID stays")
    }

    func testClearBitmapUUIDRotatesHistory() {
        var g = GenerationIdentifiers(current: y, bitmap: x, history: [h0, h1])
        g.clearBitmapUUID()
        XCTAssertEqual(g, GenerationIdentifiers(current: y, bitmap: 0, history: [x, h0]))
        g.clearBitmapUUID()
        XCTAssertEqual(g, GenerationIdentifiers(current: y, bitmap: 0, history: [x, h0]), "no-op without a bitmap UUID")
        XCTAssertEqual(g.history.count, GenerationIdentifiers.historyCount)
    }

    func testAdoptFromSyncSourceEqualsTheSourceAfterItFinishes() {
        let source = GenerationIdentifiers(current: y | 1, bitmap: x &+ off, history: [x, h0])
        var target = GenerationIdentifiers(current: x &+ off, bitmap: 0, history: [h1, 0])
        target.adoptFromSyncSource(source)
        var finishedSource = source
        finishedSource.clearBitmapUUID()
        XCTAssertEqual(target, GenerationIdentifiers(current: y, bitmap: 0, history: [x &+ off, x]))
        XCTAssertEqual(target.currentIgnoringRole, finishedSource.currentIgnoringRole)
        XCTAssertEqual(target.bitmap, finishedSource.bitmap)
        XCTAssertEqual(target.history, finishedSource.history)

        var primaryTarget = fresh()
        primaryTarget.adoptFromSyncSource(source, primary: true)
        XCTAssertEqual(primaryTarget.current, y | 1)

        var again = target
        again.adoptFromSyncSource(finishedSource)
        XCTAssertEqual(again, target, "adopting the finished source gives the same result")
    }

    func testNewCurrentClearingBitmapOnJustCreatedDisk() {
        var g = fresh()
        g.newCurrentClearingBitmap(x)
        XCTAssertEqual(g, GenerationIdentifiers(current: x, bitmap: 0, history: [0, 0]))
    }

    func testNewCurrentClearingBitmapOnDiskWithData() {
        var g = GenerationIdentifiers(current: y | 1, bitmap: x, history: [h0, h1])
        g.newCurrentClearingBitmap(z)
        XCTAssertEqual(g, GenerationIdentifiers(current: z | 1, bitmap: y | 1, history: [x, h0]))
    }

    func testAdoptSkippingInitialSyncOnlyOnJustCreatedDisk() {
        var g = fresh()
        XCTAssertTrue(g.adoptSkippingInitialSync(x | 1))
        XCTAssertEqual(g, GenerationIdentifiers(current: x))
        var used = GenerationIdentifiers(current: y)
        XCTAssertFalse(used.adoptSkippingInitialSync(x))
        XCTAssertEqual(used, GenerationIdentifiers(current: y))
    }

    func testStartSyncAsSourceDerivesTheSyncUUIDFromTheBitmapUUID() {
        var g = GenerationIdentifiers(current: y | 1, bitmap: x, history: [h0, h1])
        let sync = g.startSyncAsSource(randomUUID: w)
        XCTAssertEqual(sync, x &+ off)
        XCTAssertEqual(g, GenerationIdentifiers(current: y | 1, bitmap: x &+ off, history: [x, h0]))
    }

    func testStartSyncAsSourceUsesTheRandomUUIDWithoutABitmapUUID() {
        var none = GenerationIdentifiers(current: y, history: [h0, h1])
        XCTAssertEqual(none.startSyncAsSource(randomUUID: w), w)
        XCTAssertEqual(none, GenerationIdentifiers(current: y, bitmap: w, history: [h0, h1]))

        var forced = fresh()
        forced.startNewCurrent(x, primary: true)
        XCTAssertEqual(forced.startSyncAsSource(randomUUID: w), w)
        XCTAssertEqual(forced, GenerationIdentifiers(current: x | 1, bitmap: w, history: [GenerationIdentifiers.justCreated, 0]))
    }

    func testStartSyncAsTarget() {
        var g = GenerationIdentifiers(current: x, bitmap: 0, history: [h0, h1])
        g.startSyncAsTarget(syncUUID: z | 1)
        XCTAssertEqual(g, GenerationIdentifiers(current: z, bitmap: 0, history: [h0, h1]))
    }

    func testHistoryStaysTwoEntriesEvenIfSetOtherwise() {
        var g = GenerationIdentifiers(current: y, bitmap: x, history: [h0, h1])
        g.history = [h0]
        g.clearBitmapUUID()
        XCTAssertEqual(g.history, [x, h0])
        g.history = [h0, h1, w]
        g.bitmap = z
        g.clearBitmapUUID()
        XCTAssertEqual(g.history, [z, h0])
    }

    // MARK: - Two-node sequences

    struct Node {
        var name: String
        var gen: GenerationIdentifiers
        var disk: DiskState
        var role: Role = .secondary
        var crashed = false
        var view: SyncView { SyncView(generation: gen, disk: disk, role: role, crashedPrimary: crashed) }
    }

    /// Decides from both sides, checks that the two decisions mirror each other, returns `a`'s.
    func handshake(_ a: Node, _ b: Node, file: StaticString = #filePath, line: UInt = #line) -> SyncDecision {
        let atA = SyncDecider.decide(local: a.view, peer: b.view, localResolves: a.name < b.name)
        let atB = SyncDecider.decide(local: b.view, peer: a.view, localResolves: b.name < a.name)
        XCTAssertEqual(atA.strategy.mirrored, atB.strategy, "\(a.name): \(atA) / \(b.name): \(atB)", file: file, line: line)
        return atA
    }

    /// Runs a resync with DRBD's sync-UUID exchange and returns both nodes afterwards.
    func resync(source: Node, target: Node, random: UInt64) -> (Node, Node) {
        var s = source
        var t = target
        let sync = s.gen.startSyncAsSource(randomUUID: random)
        t.gen.startSyncAsTarget(syncUUID: sync)
        t.disk = .inconsistent
        t.gen.adoptFromSyncSource(s.gen)
        s.gen.clearBitmapUUID()
        t.disk = .upToDate
        return (s, t)
    }

    func testCreateForcePrimaryLosePeerWriteReconnectIsABitmapSync() {
        var a = Node(name: "alpha", gen: fresh(), disk: .inconsistent)
        var b = Node(name: "bravo", gen: fresh(), disk: .inconsistent)
        XCTAssertEqual(handshake(a, b).strategy, .bothInconsistent)

        // primary --force on alpha.
        a.gen.startNewCurrent(x, primary: true)
        a.role = .primary
        a.disk = .upToDate
        let initial = handshake(a, b)
        XCTAssertEqual(initial.strategy, .becomeSyncSource(full: true))
        XCTAssertEqual(initial.rule, 30)

        (a, b) = resync(source: a, target: b, random: w)
        XCTAssertEqual(a.gen.currentIgnoringRole, b.gen.currentIgnoringRole)
        XCTAssertEqual(a.gen.history, b.gen.history)
        XCTAssertEqual(handshake(a, b).strategy, .noSync)

        // The link fails; alpha, still Primary, starts a new generation and writes.
        a.gen.startNewCurrent(y, primary: true)
        b.disk = .outdated
        let reconnect = handshake(a, b)
        XCTAssertEqual(reconnect.strategy, .becomeSyncSource(full: false))
        XCTAssertEqual(reconnect.rule, 70)
        let atB = SyncDecider.decide(local: b.view, peer: a.view, localResolves: true)
        XCTAssertEqual(atB.rule, 50)

        (a, b) = resync(source: a, target: b, random: z)
        XCTAssertEqual(handshake(a, b).strategy, .noSync)
        XCTAssertEqual(handshake(a, b).rule, 40)
    }

    /// The worked example of Docs/Resync.md, step by step, with the identifiers the table shows.
    func testWorkedExampleFromTheDocs() {
        let jc = GenerationIdentifiers.justCreated
        let r: UInt64 = 0x7777_0000_0000_7770
        func ids(_ c: UInt64, _ b: UInt64, _ h1: UInt64, _ h2: UInt64) -> GenerationIdentifiers {
            GenerationIdentifiers(current: c, bitmap: b, history: [h1, h2])
        }
        // 1. create-md on both.
        var alpha = Node(name: "alpha", gen: fresh(), disk: .inconsistent)
        var bravo = Node(name: "bravo", gen: fresh(), disk: .inconsistent)
        XCTAssertEqual(handshake(alpha, bravo).strategy, .bothInconsistent)
        XCTAssertEqual(handshake(alpha, bravo).rule, 10)
        // 2. primary --force on alpha.
        alpha.gen.startNewCurrent(x, primary: true)
        alpha.disk = .upToDate
        alpha.role = .primary
        XCTAssertEqual(alpha.gen, ids(x | 1, jc, 0, 0))
        XCTAssertEqual(handshake(alpha, bravo).rule, 30)
        XCTAssertEqual(handshake(bravo, alpha).rule, 20)
        // 3. resync starts.
        let sync1 = alpha.gen.startSyncAsSource(randomUUID: r)
        XCTAssertEqual(sync1, r)
        bravo.gen.startSyncAsTarget(syncUUID: sync1)
        XCTAssertEqual(alpha.gen, ids(x | 1, r, jc, 0))
        XCTAssertEqual(bravo.gen, ids(r, 0, 0, 0))
        // 4. resync ends.
        bravo.gen.adoptFromSyncSource(alpha.gen)
        alpha.gen.clearBitmapUUID()
        bravo.disk = .upToDate
        XCTAssertEqual(alpha.gen, ids(x | 1, 0, r, jc))
        XCTAssertEqual(bravo.gen, ids(x, 0, r, jc))
        XCTAssertEqual(handshake(alpha, bravo).strategy, .noSync)
        // 5. the link fails, alpha writes.
        alpha.gen.startNewCurrent(y, primary: true)
        XCTAssertEqual(alpha.gen, ids(y | 1, x | 1, r, jc))
        // 6. reconnect.
        XCTAssertEqual(handshake(alpha, bravo).rule, 70)
        XCTAssertEqual(handshake(bravo, alpha).rule, 50)
        // 7. resync starts.
        let xPrime = (x | 1) &+ off
        let sync2 = alpha.gen.startSyncAsSource(randomUUID: w)
        XCTAssertEqual(sync2, xPrime)
        bravo.gen.startSyncAsTarget(syncUUID: sync2)
        bravo.disk = .inconsistent
        XCTAssertEqual(alpha.gen, ids(y | 1, xPrime, x | 1, r))
        XCTAssertEqual(bravo.gen.currentIgnoringRole, xPrime & ~1)
        XCTAssertEqual(bravo.gen.history, [r, jc])
        XCTAssertEqual(handshake(alpha, bravo).rule, 70, "broken off here: resumes by rule 70")
        // 8. resync ends.
        bravo.gen.adoptFromSyncSource(alpha.gen)
        alpha.gen.clearBitmapUUID()
        bravo.disk = .upToDate
        XCTAssertEqual(alpha.gen, ids(y | 1, 0, xPrime, x | 1))
        XCTAssertEqual(bravo.gen, ids(y, 0, xPrime, x | 1))
        XCTAssertEqual(handshake(alpha, bravo).rule, 40)
        // 9. partition, both write.
        alpha.gen.startNewCurrent(z, primary: true)
        bravo.role = .primary
        bravo.gen.startNewCurrent(w, primary: true)
        XCTAssertEqual(alpha.gen, ids(z | 1, y | 1, xPrime, x | 1))
        XCTAssertEqual(bravo.gen, ids(w | 1, y, xPrime, x | 1))
        XCTAssertEqual(handshake(alpha, bravo).strategy, .splitBrain)
        XCTAssertEqual(handshake(alpha, bravo).rule, 90)
    }

    func testBothPartitionedPrimariesIsSplitBrain() {
        var a = Node(name: "alpha", gen: GenerationIdentifiers(current: x, history: [h0, h1]), disk: .upToDate)
        var b = Node(name: "bravo", gen: GenerationIdentifiers(current: x, history: [h0, h1]), disk: .upToDate)
        XCTAssertEqual(handshake(a, b).strategy, .noSync)

        a.role = .primary
        a.gen.startNewCurrent(y, primary: true)
        b.role = .primary
        b.gen.startNewCurrent(z, primary: true)
        let decision = handshake(a, b)
        XCTAssertEqual(decision.strategy, .splitBrain)
        XCTAssertEqual(decision.rule, 90)

        // The victim discards its data (a policy's job): a full resync from the survivor then
        // leaves identical generations.
        b.role = .secondary
        (a, b) = resync(source: a, target: b, random: w)
        XCTAssertEqual(handshake(a, b).strategy, .noSync)
    }

    func testInterruptedResyncResumesFromTheBitmap() {
        var a = Node(name: "alpha", gen: GenerationIdentifiers(current: y | 1, bitmap: x | 1, history: [h0, h1]),
                     disk: .upToDate, role: .primary)
        var b = Node(name: "bravo", gen: GenerationIdentifiers(current: x, history: [h0, h1]), disk: .outdated)
        XCTAssertEqual(handshake(a, b).rule, 70)

        let sync = a.gen.startSyncAsSource(randomUUID: w)
        b.gen.startSyncAsTarget(syncUUID: sync)
        b.disk = .inconsistent
        // The link fails mid-resync; alpha keeps writing (and even starts a new generation).
        a.gen.startNewCurrent(z, primary: true)
        let decision = handshake(a, b)
        XCTAssertEqual(decision.strategy, .becomeSyncSource(full: false))
        XCTAssertEqual(decision.rule, 70)
    }

    func testLostSyncUUIDIsUndone() {
        var a = Node(name: "alpha", gen: GenerationIdentifiers(current: y | 1, bitmap: x | 1, history: [h0, h1]),
                     disk: .upToDate, role: .primary)
        var b = Node(name: "bravo", gen: GenerationIdentifiers(current: x, history: [h0, h1]), disk: .outdated)
        _ = a.gen.startSyncAsSource(randomUUID: w)   // stamped, but the packet never reaches bravo

        let atA = SyncDecider.decide(local: a.view, peer: b.view, localResolves: true)
        let atB = SyncDecider.decide(local: b.view, peer: a.view, localResolves: false)
        XCTAssertEqual(atA.rule, 71)
        XCTAssertEqual(atA.strategy, .becomeSyncSource(full: false))
        XCTAssertEqual(atB.rule, 51)
        XCTAssertEqual(atB.strategy, .becomeSyncTarget(full: false))
        XCTAssertEqual(atA.correctedLocal, GenerationIdentifiers(current: y | 1, bitmap: x | 1, history: [h0, h0]))
        XCTAssertEqual(atB.correctedPeer, atA.correctedLocal)

        a.gen = atA.correctedLocal!
        (a, b) = resync(source: a, target: b, random: z)
        XCTAssertEqual(handshake(a, b).strategy, .noSync)
    }

    func testAdoptingAtStartThenInterruptedIsRule34() {
        var a = Node(name: "alpha", gen: GenerationIdentifiers(current: y, bitmap: x, history: [h0, h1]), disk: .upToDate)
        var b = Node(name: "bravo", gen: GenerationIdentifiers(current: x, history: [h0, h1]), disk: .outdated)
        _ = a.gen.startSyncAsSource(randomUUID: w)
        b.gen.adoptFromSyncSource(a.gen)   // adopted at the start instead of at the end
        b.disk = .inconsistent

        let decision = handshake(a, b)
        XCTAssertEqual(decision.rule, 34)
        XCTAssertEqual(decision.strategy, .becomeSyncSource(full: false))
        let atB = SyncDecider.decide(local: b.view, peer: a.view, localResolves: false)
        XCTAssertEqual(atB.rule, 35)
        a.gen = decision.correctedLocal!
        XCTAssertEqual(a.gen, b.gen)
    }

    func testCrashedPrimaryBecomesSourceOfItsActivityLog() {
        var a = Node(name: "alpha", gen: GenerationIdentifiers(current: x | 1, history: [h0, h1]), disk: .upToDate, role: .primary)
        let b = Node(name: "bravo", gen: GenerationIdentifiers(current: x, history: [h0, h1]), disk: .upToDate)
        a.role = .secondary
        a.crashed = true
        let decision = handshake(a, b)
        XCTAssertEqual(decision.strategy, .becomeSyncSource(full: false))
        XCTAssertEqual(decision.rule, 40)
    }

    func testSkippingTheInitialSync() {
        var a = Node(name: "alpha", gen: fresh(), disk: .inconsistent)
        var b = Node(name: "bravo", gen: fresh(), disk: .inconsistent)
        a.gen.newCurrentClearingBitmap(x)
        XCTAssertTrue(b.gen.adoptSkippingInitialSync(a.gen.current))
        a.disk = .upToDate
        b.disk = .upToDate
        XCTAssertEqual(a.gen, b.gen)
        let decision = handshake(a, b)
        XCTAssertEqual(decision.strategy, .noSync)
        XCTAssertEqual(decision.rule, 40)
    }

    func testSecondaryThatTracksChangesIsSourceWhenPeerReturns() {
        // bravo (Secondary) is promoted while alpha is away; alpha never changed its data.
        let a = Node(name: "alpha", gen: GenerationIdentifiers(current: x, history: [h0, h1]), disk: .outdated)
        var b = Node(name: "bravo", gen: GenerationIdentifiers(current: x, history: [h0, h1]), disk: .upToDate)
        b.gen.startTracking()
        b.gen.startNewCurrent(y, primary: true)
        XCTAssertEqual(b.gen.bitmap, x, "the bitmap UUID set by startTracking is kept")
        let decision = handshake(b, a)
        XCTAssertEqual(decision.strategy, .becomeSyncSource(full: false))
        XCTAssertEqual(decision.rule, 70)
    }
}
