import Dispatch
import Foundation
import RepdEngine
import RepdSimulation
import XCTest

/// Per-thread results, handed back through a lock.
final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [SimulationRunner.Summary]
    init(_ count: Int) { results = Array(repeating: SimulationRunner.Summary(), count: count) }
    func set(_ index: Int, _ summary: SimulationRunner.Summary) { lock.withLock { results[index] = summary } }
    var all: [SimulationRunner.Summary] { lock.withLock { results } }
}

/// The engine under thousands of seeded fault schedules: crashes, link cuts and stalls, disk
/// errors, role changes, operator commands, applications with a ledger. Zero violations.
final class SimulationTests: XCTestCase {
    /// Schedules run by `swift test`; `REPD_SIM_SCHEDULES` changes it (repd-sim runs more).
    static var scheduleCount: UInt64 {
        UInt64(ProcessInfo.processInfo.environment["REPD_SIM_SCHEDULES"].flatMap(Int.init) ?? 2000)
    }

    /// Simulated seconds of faults per schedule (then the faults heal and the pair must converge).
    static let seconds = 15

    func testThousandsOfSchedulesKeepEveryInvariant() {
        let count = Self.scheduleCount
        let started = Date()
        // Both cores: each thread takes every other seed.
        let threads = 2
        let box = ResultsBox(threads)
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var summary = SimulationRunner.Summary()
            var seed = UInt64(1 + thread)
            while seed <= count {
                let part = SimulationRunner.run(seeds: seed..<(seed + 1), seconds: Self.seconds, stopAtFirstFailure: false)
                summary.schedules += part.schedules
                summary.violations += part.violations
                summary.steps += part.steps
                summary.writesAcknowledged += part.writesAcknowledged
                summary.crashes += part.crashes
                summary.failures += part.failures
                seed += UInt64(threads)
            }
            box.set(thread, summary)
        }
        let results = box.all
        let schedules = results.reduce(0) { $0 + $1.schedules }
        let violations = results.reduce(0) { $0 + $1.violations }
        let steps = results.reduce(0) { $0 + $1.steps }
        let writes = results.reduce(0) { $0 + $1.writesAcknowledged }
        let crashes = results.reduce(0) { $0 + $1.crashes }
        print("simulation: schedules \(schedules), violations \(violations), steps \(steps), acknowledged writes \(writes), power losses \(crashes), \(Int(Date().timeIntervalSince(started))) s")
        XCTAssertEqual(schedules, Int(count))
        for (seed, violation) in results.flatMap(\.failures).prefix(5) {
            XCTFail("seed \(seed): \(violation) (reproduce: repd-sim --seed \(seed) --seconds \(Self.seconds) --verbose)")
        }
        XCTAssertEqual(violations, 0)
        XCTAssertGreaterThan(writes, Int(count) * 50, "the schedules should carry real application load")
        XCTAssertGreaterThan(crashes, Int(count) / 2, "the schedules should include power losses")
    }

    /// Seeds that once found a bug (with repd-sim's default 30 simulated seconds), kept as
    /// regression schedules: each must stay clean.
    func testSeedsThatFoundBugs() {
        let seeds: [UInt64] = [3, 12, 118, 173, 897, 1438, 1584, 1588, 1599, 1727, 2234, 2895, 2915, 4318, 5460, 6496, 6528, 7469, 8526, 8531]
        for seed in seeds {
            let summary = SimulationRunner.run(seeds: seed..<(seed + 1), seconds: 30, stopAtFirstFailure: false)
            for (failed, violation) in summary.failures {
                XCTFail("seed \(failed): \(violation) (reproduce: repd-sim --seed \(failed) --verbose)")
            }
        }
    }

    /// One seed, one run: everything that happens comes from the seed.
    func testASeedReproducesExactly() {
        for seed: UInt64 in [7, 42, 1234] {
            let scenario = Scenario.generate(seed: seed)
            let first = Simulation(scenario: scenario).run()
            let second = Simulation(scenario: scenario).run()
            XCTAssertEqual(first.steps, second.steps, "seed \(seed)")
            XCTAssertEqual(first.trace, second.trace, "seed \(seed)")
            XCTAssertEqual(first.writesAcknowledged, second.writesAcknowledged, "seed \(seed)")
        }
    }

    /// The scenarios are what they claim: mixed faults, every kind present across seeds.
    func testSchedulesMixEveryKindOfFault() {
        var kinds = Set<String>()
        for seed: UInt64 in 1...200 {
            for step in Scenario.generate(seed: seed).steps {
                kinds.insert(String(describing: step.action).components(separatedBy: " ").first ?? "")
            }
        }
        for kind in ["power", "link", "primary", "secondary", "disconnect", "connect", "verify", "invalidate", "pause-sync", "application"] {
            XCTAssertTrue(kinds.contains(kind), "no \(kind) step in 200 schedules: \(kinds.sorted())")
        }
    }
}
