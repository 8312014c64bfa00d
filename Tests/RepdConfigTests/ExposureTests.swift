import RepdConfig
import XCTest

/// Who may reach the NBD export: `nbd-address` beyond loopback only with `nbd-insecure yes;`,
/// `nbd-socket-group` for the unix socket.
final class ExposureTests: XCTestCase {
    private func resource(_ alphaExtra: String) -> String {
        """
        resource r {
            on a { device none; disk /dev/sdb1; address 127.0.0.1:7789; meta-disk internal; \(alphaExtra) }
            on b { device none; disk /dev/sdb1; address 127.0.0.2:7789; meta-disk internal; }
        }
        """
    }

    func testAnNBDAddressOtherMachinesReachIsAnErrorWithoutNBDInsecure() {
        for address in ["0.0.0.0:10809", "192.168.1.5:10809", "[::]:10809", "[fd00::1]:10809"] {
            let found = diagnostics(resource("nbd-address \(address);"))
            XCTAssertEqual(found.count, 1, "\(address): \(found)")
            XCTAssertTrue(found.first?.hasPrefix("t.res:2:") == true, "\(found)")
            XCTAssertTrue(found.first?.contains("can be reached from other machines") == true, "\(found)")
            XCTAssertTrue(found.first?.contains("nbd-insecure yes;") == true, "\(found)")
            XCTAssertEqual(diagnostics(resource("nbd-address \(address); nbd-insecure yes;")), [], address)
        }
        for address in ["127.0.0.1:10809", "127.0.0.2:10809", "[::1]:10809"] {
            XCTAssertEqual(diagnostics(resource("nbd-address \(address);")), [], address)
        }
    }

    func testTheResolvedHostCarriesTheOptions() throws {
        let directory = try makeDirectory(["r.res": resource("nbd-address 0.0.0.0:10809; nbd-insecure yes; nbd-socket-group disk;")], testCase: self)
        let resolved = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a")
        XCTAssertTrue(resolved.local.nbdInsecure)
        XCTAssertEqual(resolved.local.nbdSocketGroup, "disk")
        XCTAssertNil(resolved.peer?.nbdSocketGroup)
    }
}
