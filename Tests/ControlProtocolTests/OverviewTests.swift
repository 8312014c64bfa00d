@testable import ControlProtocol
import XCTest

/// Golden lines of `repd overview`: drbd-overview's one line per resource, /proc/drbd's progress lines.
final class OverviewTests: XCTestCase {
    let wide = Int.max

    func testConnected() {
        XCTAssertEqual(Overview.lines([Fixture.connectedPrimary], width: wide), [
            "r0  Connected  Primary/Secondary  UpToDate/UpToDate  C  nbd+unix:///r0?socket=/run/repd/r0.sock",
        ])
    }

    func testColumnsAlignAcrossResources() {
        var other = Fixture.secondaryAlone
        other.name = "archive"
        other.nbdURI = "nbd+unix:///archive?socket=/run/repd/archive.sock"
        XCTAssertEqual(Overview.lines([Fixture.connectedPrimary, other], width: wide), [
            "r0       Connected   Primary/Secondary  UpToDate/UpToDate  C  nbd+unix:///r0?socket=/run/repd/r0.sock",
            "archive  Connecting  Secondary/Unknown  UpToDate/DUnknown  C  nbd+unix:///archive?socket=/run/repd/archive.sock",
        ])
    }

    func testLinesAreCutToTheTerminalWidth() {
        XCTAssertEqual(Overview.lines([Fixture.connectedPrimary], width: 40), ["r0  Connected  Primary/Secondary  UpToDa"])
    }

    func testSyncSource() {
        XCTAssertEqual(Overview.lines([Fixture.syncSource], width: wide), [
            "r0  SyncSource  Primary/Secondary  UpToDate/Inconsistent  C  nbd+unix:///r0?socket=/run/repd/r0.sock",
            "    [==>.................] sync'ed: 18.4% (776/952)M",
            "    finish: 0:05:27 speed: 2,430 (2,252) K/sec",
        ])
    }

    func testSyncTargetShowsTheControllersTarget() {
        XCTAssertEqual(Overview.lines([Fixture.syncTarget], width: wide), [
            "r0  SyncTarget  Secondary/Primary  Inconsistent/UpToDate  C  nbd+unix:///r0?socket=/run/repd/r0.sock",
            "    [==>.................] sync'ed: 18.4% (776/952)M",
            "    finish: 0:05:27 speed: 2,430 (2,252) want: 2,560 K/sec",
        ])
    }

    func testPaused() {
        XCTAssertEqual(Overview.lines([Fixture.pausedSync], width: wide), [
            "r0  PausedSyncS  Primary/Secondary  UpToDate/Inconsistent  C  nbd+unix:///r0?socket=/run/repd/r0.sock",
            "    [==>.................] sync'ed: 18.4% (776/952)M (paused by user)",
            "    finish: -:--:-- speed: 0 (2,252) K/sec",
        ])
    }

    func testVerifying() {
        XCTAssertEqual(Overview.lines([Fixture.verifying], width: wide), [
            "r0  VerifyS  Primary/Secondary  UpToDate/UpToDate  C  nbd+unix:///r0?socket=/run/repd/r0.sock",
            "    [=========>..........] verified: 50.0% (476/952)M",
            "    finish: 0:00:59 speed: 8,124 (8,123) K/sec",
        ])
    }

    func testStandAloneAfterSplitBrain() {
        XCTAssertEqual(Overview.lines([Fixture.standAloneSplitBrain], width: wide), [
            "r0  StandAlone  Primary/Unknown  UpToDate/DUnknown  C  nbd+unix:///r0?socket=/run/repd/r0.sock",
            "    split brain: on the node whose changes are to be dropped run: repd connect --discard-my-data r0",
        ])
    }

    func testDisklessAndNoPeer() {
        XCTAssertEqual(Overview.lines([Fixture.diskless], width: wide), [
            "r0  Connected  Secondary/Primary  Diskless/UpToDate  C  nbd+unix:///r0?socket=/run/repd/r0.sock",
        ])
        var single = Fixture.connectedPrimary
        single.connections = []
        XCTAssertEqual(Overview.lines([single], width: wide), [
            "r0  StandAlone  Primary/Unknown  UpToDate/DUnknown  -  nbd+unix:///r0?socket=/run/repd/r0.sock",
        ])
        XCTAssertEqual(Overview.lines([], width: wide), [])
    }

    func testProgressBar() {
        func bar(total: UInt64, left: UInt64, verify: Bool = false) -> String {
            Overview.progressBarLine(SyncProgress(
                isVerify: verify, totalKiB: total, leftKiB: left, percentDone: 0, rateKiB: nil, averageKiB: nil,
                etaSeconds: nil, wantKiB: nil, pausedBy: nil, isPaused: false))
        }
        XCTAssertEqual(bar(total: 1_048_576, left: 1_048_576), "[>...................] sync'ed:  0.0% (1024/1024)M")
        XCTAssertEqual(bar(total: 1_048_576, left: 996_148), "[>...................] sync'ed:  4.9% (972/1024)M")
        XCTAssertEqual(bar(total: 1_048_576, left: 996_147), "[>...................] sync'ed:  5.0% (972/1024)M")
        XCTAssertEqual(bar(total: 1_048_576, left: 943_718), "[=>..................] sync'ed: 10.0% (921/1024)M")
        XCTAssertEqual(bar(total: 1_048_576, left: 0), "[===================>] sync'ed:100.0% (0/1024)M")
        XCTAssertEqual(bar(total: 8_192, left: 2_048, verify: true), "[==============>.....] verified: 75.0% (2048/8192)K")
    }

    func testFinishLine() {
        func finish(rate: UInt64?, average: UInt64?, eta: UInt64?, want: UInt64? = nil, paused: Bool = false, state: String = "SyncSource") -> String {
            Overview.finishLine(SyncProgress(
                isVerify: false, totalKiB: 1, leftKiB: 1, percentDone: 0, rateKiB: rate, averageKiB: average,
                etaSeconds: eta, wantKiB: want, pausedBy: nil, isPaused: paused), replicationState: state)
        }
        XCTAssertEqual(finish(rate: 40_480, average: 38_002, eta: 327), "finish: 0:05:27 speed: 40,480 (38,002) K/sec")
        XCTAssertEqual(finish(rate: 1_234_567, average: 999, eta: 36_000), "finish: 10:00:00 speed: 1,234,567 (999) K/sec")
        XCTAssertEqual(finish(rate: 0, average: 38_002, eta: nil), "finish: -:--:-- speed: 0 (38,002) K/sec (stalled)")
        XCTAssertEqual(finish(rate: nil, average: nil, eta: nil, paused: true), "finish: -:--:-- speed: 0 (0) K/sec")
        XCTAssertEqual(finish(rate: 100, average: 100, eta: 1, want: 51_200), "finish: 0:00:01 speed: 100 (100) K/sec")
        XCTAssertEqual(
            finish(rate: 100, average: 100, eta: 1, want: 51_200, state: "SyncTarget"),
            "finish: 0:00:01 speed: 100 (100) want: 51,200 K/sec")
    }

    func testNumberFormats() {
        XCTAssertEqual(TextFormat.thousands(0), "0")
        XCTAssertEqual(TextFormat.thousands(999), "999")
        XCTAssertEqual(TextFormat.thousands(1_000), "1,000")
        XCTAssertEqual(TextFormat.thousands(40_480), "40,480")
        XCTAssertEqual(TextFormat.thousands(12_345_678_901), "12,345,678,901")
        XCTAssertEqual(TextFormat.clock(0), "0:00:00")
        XCTAssertEqual(TextFormat.clock(3_599), "0:59:59")
        XCTAssertEqual(TextFormat.clock(360_061), "100:01:01")
        XCTAssertEqual(TextFormat.twoDecimals(42.1), "42.10")
        XCTAssertEqual(TextFormat.twoDecimals(0.005), "0.01")
        XCTAssertEqual(TextFormat.twoDecimals(99.999), "100.00")
    }
}
