import RepdConfig
import XCTest

/// `repd adjust`'s plan: what changed between the running resource and the file, and how each
/// change takes effect.
final class AdjustPlanTests: XCTestCase {
    private func resolve(_ text: String) throws -> ResolvedResource {
        let directory = try makeDirectory(["r.res": text], testCase: self)
        return try ConfigLoader(directory: directory).resolve(resource: "r", node: "a")
    }

    func testNothingChanged() throws {
        let running = try resolve(minimalResource(body: "  net { protocol C; }"))
        XCTAssertTrue(AdjustPlan(running: running, file: try resolve(minimalResource(body: "  net { protocol C; }"))).isEmpty)
    }

    func testEachOptionGetsItsEffect() throws {
        let running = try resolve(minimalResource(body: """
              net { protocol C; cram-hmac-alg sha256; shared-secret "a"; }
              disk { resync-rate 10M; al-extents 1237; }
              startup { wfc-timeout 10; }
            """))
        let file = try resolve(minimalResource(body: """
              net { protocol A; cram-hmac-alg sha256; shared-secret "b"; connect-int 5; }
              disk { resync-rate 40M; al-extents 3000; c-plan-ahead 0; }
              startup { wfc-timeout 20; }
              handlers { split-brain "logger sb"; }
            """))
        let plan = AdjustPlan(running: running, file: file)
        func effect(_ section: String, _ name: String) -> AdjustPlan.Effect? {
            plan.changes.first { $0.section == section && $0.name == name }?.effect
        }
        XCTAssertEqual(effect("net", "protocol"), .now)
        XCTAssertEqual(effect("net", "shared-secret"), .nextConnection)
        XCTAssertEqual(effect("net", "connect-int"), .nextUp)
        XCTAssertEqual(effect("disk", "resync-rate"), .now)
        XCTAssertEqual(effect("disk", "c-plan-ahead"), .now)
        XCTAssertEqual(effect("disk", "al-extents"), .nextUp)
        XCTAssertEqual(effect("startup", "wfc-timeout"), .nextUp)
        XCTAssertEqual(effect("handlers", "split-brain"), .now)
        XCTAssertTrue(plan.refusals.isEmpty, "\(plan.refusals)")
        let resync = plan.changes.first { $0.name == "resync-rate" }!
        XCTAssertEqual(resync.description, "disk resync-rate: 10M -> 40M: applied now")
        let planAhead = plan.changes.first { $0.name == "c-plan-ahead" }!
        XCTAssertEqual(planAhead.description, "disk c-plan-ahead: (default) -> 0: applied now")
    }

    func testTheDiskAndAddressesAreRefusedWithTheWayToDoIt() throws {
        let running = try resolve(minimalResource())
        let file = try resolve(minimalResource().replacingOccurrences(of: "disk /dev/sdb1;\n        address 127.0.0.1:7789;",
                                                                       with: "disk /dev/sdc1;\n        address 127.0.0.1:7790;"))
        let plan = AdjustPlan(running: running, file: file)
        XCTAssertEqual(Set(plan.refusals.map(\.name)), ["disk", "address"], "\(plan.changes)")
        for change in plan.refusals {
            guard case .refused(let why) = change.effect else { continue }
            XCTAssertTrue(why.contains("`repd down r`, then `repd up r`"), why)
        }
        let peerMoved = try resolve(minimalResource().replacingOccurrences(of: "127.0.0.2:7789", with: "127.0.0.3:7789"))
        XCTAssertEqual(AdjustPlan(running: running, file: peerMoved).refusals.map { "\($0.section) \($0.name)" }, ["on b address"])
    }

    func testSizeIsRefused() throws {
        let plan = AdjustPlan(running: try resolve(minimalResource()), file: try resolve(minimalResource(body: "  disk { size 1G; }")))
        XCTAssertEqual(plan.refusals.map(\.name), ["size"])
    }
}
