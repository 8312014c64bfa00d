import XCTest
@testable import RepdCore

final class ResyncControllerTests: XCTestCase {
    private let mib = 1 << 20

    func testFixedRateIsSpreadOverTicks() {
        var c = ResyncController(settings: .init(fixedRate: 10 * mib, planAhead: 0, fillTarget: 0, delayTarget: 10, maxRate: 100 * mib, minRate: 0))
        XCTAssertFalse(c.isDynamic)
        for _ in 0..<5 { XCTAssertEqual(c.tick(acknowledged: 0, inFlight: 0, applicationBusy: false), mib) }
        XCTAssertEqual(c.tick(acknowledged: 0, inFlight: 0, applicationBusy: true), mib, "no c-min-rate: no throttling")
    }

    func testApplicationIOHoldsResyncToMinRate() {
        var c = ResyncController(settings: .init(fixedRate: 10 * mib, planAhead: 0, fillTarget: 0, delayTarget: 10, maxRate: 100 * mib, minRate: 250 * 1024))
        XCTAssertEqual(c.tick(acknowledged: 0, inFlight: 0, applicationBusy: true), 25600)
        XCTAssertEqual(c.tick(acknowledged: 0, inFlight: 0, applicationBusy: false), mib)
    }

    /// A link that acknowledges what was sent `latency` ticks earlier. `inFlight` is what the
    /// controller saw at each tick.
    private func simulate(_ settings: ResyncController.Settings, latency: Int, ticks: Int) -> (rates: [Int], inFlight: [Int]) {
        var c = ResyncController(settings: settings)
        var pipe = Array(repeating: 0, count: latency)
        var acknowledged = 0
        var rates: [Int] = [], inFlight: [Int] = []
        for _ in 0..<ticks {
            let flying = pipe.reduce(0, +)
            let send = c.tick(acknowledged: acknowledged, inFlight: flying, applicationBusy: false)
            pipe.append(send)
            acknowledged = pipe.removeFirst()
            rates.append(send)
            inFlight.append(flying)
        }
        return (rates, inFlight)
    }

    func testFillTargetModeKeepsAWindowAndOnlyCapsTheRatePerTick() {
        var c = ResyncController(settings: .init(fixedRate: 0, planAhead: 20, fillTarget: 50 << 10, delayTarget: 10, maxRate: 100 * mib, minRate: 250 * 1024))
        XCTAssertEqual(c.window, mib, "DRBD's defaults: what c-max-rate moves in 10 ms, more than the fill target")
        let large = ResyncController(settings: .init(fixedRate: 0, planAhead: 20, fillTarget: 4 * mib, delayTarget: 10, maxRate: 100 * mib, minRate: 0))
        XCTAssertEqual(large.window, 4 * mib, "a larger fill target is what may be in flight")
        let huge = ResyncController(settings: .init(fixedRate: 0, planAhead: 20, fillTarget: 1 << 30, delayTarget: 10, maxRate: 4 << 30, minRate: 0))
        XCTAssertEqual(huge.window, 16 * mib, "never more than 16 MiB")
        // Whatever came back during the last tick, the tick allows a tenth of c-max-rate: the
        // window, refilled at each acknowledgement, sets the pace.
        for acknowledged in [0, 50 << 10, 10 * mib] {
            XCTAssertEqual(c.tick(acknowledged: acknowledged, inFlight: 50 << 10, applicationBusy: false), 10 * mib)
        }
        XCTAssertEqual(c.tick(acknowledged: 0, inFlight: 0, applicationBusy: true), 25600, "busy applications: c-min-rate")
        let tiny = ResyncController(settings: .init(fixedRate: 0, planAhead: 20, fillTarget: 512, delayTarget: 10, maxRate: 250 << 10, minRate: 0))
        XCTAssertEqual(tiny.window, 4096, "at least one block")
        let delay = ResyncController(settings: .init(fixedRate: 0, planAhead: 20, fillTarget: 0, delayTarget: 10, maxRate: 100 * mib, minRate: 0))
        XCTAssertNil(delay.window)
        let fixed = ResyncController(settings: .init(fixedRate: 10 * mib, planAhead: 0, fillTarget: 50 << 10, delayTarget: 10, maxRate: 100 * mib, minRate: 0))
        XCTAssertNil(fixed.window, "c-plan-ahead 0: the fixed rate, no window")
    }

    func testDynamicControllerNeverExceedsMaxRate() {
        let max = 20 * mib
        let result = simulate(.init(fixedRate: 0, planAhead: 20, fillTarget: 1 << 30, delayTarget: 10, maxRate: max, minRate: 0), latency: 1, ticks: 200)
        XCTAssertEqual(result.rates.max(), max / 10)
        XCTAssertEqual(result.rates.suffix(20), Array(repeating: max / 10, count: 20))
        XCTAssertTrue(result.rates.allSatisfy { $0 >= 0 })
    }

    func testDelayTargetScalesWithTheRate() {
        // Fill target 0: keep c-delay-target (here 1 s = 10 ticks) of the acknowledged rate in flight.
        let result = simulate(.init(fixedRate: 0, planAhead: 10, fillTarget: 0, delayTarget: 10, maxRate: 100 * mib, minRate: 0), latency: 2, ticks: 100)
        XCTAssertTrue(result.rates.allSatisfy { $0 >= 0 && $0 <= 10 * mib })
    }
}
