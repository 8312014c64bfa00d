import ArgumentParser
import RepdSimulation

/// `repd-sim`: runs the replication engine through seeded fault schedules.
struct RepdSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repd-sim",
        abstract: "Run two repd engines through seeded fault schedules (crashes, link cuts, disk errors) and check their invariants.",
        discussion: """
            Every schedule comes from one seed; a failing seed reproduces exactly. Examples:
              repd-sim --schedules 100000          # long run from seed 1
              repd-sim --seed 4242 --verbose       # one schedule, its steps and the engines' log
            """)

    @Option(help: "Run only this seed (and shrink it if it fails).") var seed: UInt64?
    @Option(help: "How many schedules, from --first.") var schedules: UInt64 = 1000
    @Option(help: "The first seed.") var first: UInt64 = 1
    @Option(help: "Simulated seconds of faults per schedule.") var seconds: Int = 30
    @Flag(help: "Print the schedule and the trace of a single seed.") var verbose = false
    @Option(help: "With --seed: trace every change of this block.") var watch: Int?

    func run() throws {
        if let seed {
            let scenario = Scenario.generate(seed: seed, seconds: seconds)
            let simulation = Simulation(scenario: scenario)
            simulation.watchBlock = watch
            if verbose { simulation.traceLimit = 1_000_000 }
            let result = simulation.run()
            if verbose {
                print(scenario)
                result.trace.forEach { print($0) }
            }
            print("schedules 1, violations \(result.violations.count), steps \(result.steps)")
            if let violation = result.violations.first {
                print("violation: \(violation)")
                if let (shrunk, found) = SimulationRunner.shrink(scenario) {
                    print("shrunk schedule (\(shrunk.steps.count) of \(scenario.steps.count) steps) still fails with: \(found)")
                    print(shrunk)
                }
                throw ExitCode(1)
            }
            return
        }
        let summary = SimulationRunner.run(seeds: first..<(first + schedules), seconds: seconds)
        print(summary)
        if let failure = summary.failures.first {
            print("seed \(failure.seed) fails: \(failure.violation)")
            print("reproduce: repd-sim --seed \(failure.seed) --verbose")
            throw ExitCode(1)
        }
    }
}

RepdSim.main()
