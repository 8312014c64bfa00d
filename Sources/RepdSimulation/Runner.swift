import RepdEngine

/// Runs many schedules and shrinks a failing one to the steps that still make it fail.
public enum SimulationRunner {
    public struct Summary: Sendable, CustomStringConvertible {
        public var schedules = 0
        public var violations = 0
        public var steps = 0
        public var writesAcknowledged = 0
        public var crashes = 0
        public var failures: [(seed: UInt64, violation: Violation)] = []
        public init() {}
        public var description: String { "schedules \(schedules), violations \(violations), steps \(steps)" }
    }

    /// Runs the schedules of seeds `first ..< first + count`.
    public static func run(seeds: Range<UInt64>, seconds: Int = 30, stopAtFirstFailure: Bool = true) -> Summary {
        var summary = Summary()
        for seed in seeds {
            let result = Simulation(scenario: Scenario.generate(seed: seed, seconds: seconds)).run()
            summary.schedules += 1
            summary.steps += result.steps
            summary.writesAcknowledged += result.writesAcknowledged
            summary.crashes += result.crashes
            if let violation = result.violations.first {
                summary.violations += 1
                summary.failures.append((seed, violation))
                if stopAtFirstFailure { break }
            }
        }
        return summary
    }

    /// The smallest sub-schedule (greedily, one step at a time) that still breaks an invariant,
    /// with the same environment seed. Bounded by `attempts` runs.
    public static func shrink(_ scenario: Scenario, attempts: Int = 400) -> (Scenario, Violation)? {
        guard let first = Simulation(scenario: scenario).run().violations.first else { return nil }
        var current = scenario
        var violation = first
        var tries = 0
        var index = current.steps.count - 1
        let environment = scenario.seed ^ 0xD1CE_D1CE
        while index >= 0 && tries < attempts {
            var candidate = current
            candidate.steps.remove(at: index)
            tries += 1
            if let found = Simulation(scenario: candidate, environmentSeed: environment).run().violations.first {
                current = candidate
                violation = found
            }
            index -= 1
        }
        return (current, violation)
    }
}
