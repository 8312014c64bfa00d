import RepdConfig
import XCTest

/// `tls yes` on the replication link and `nbd-tls` on NBD: what the validator demands, what the
/// resolver carries, what `adjust` does with a change.
final class TLSConfigTests: XCTestCase {
    private func resource(net: String = "", body: String = "", alpha: String = "") -> String {
        """
        resource r {
            net { protocol C; \(net) }
            \(body)
            on a { device none; disk /dev/sdb1; address 127.0.0.1:7789; meta-disk internal; \(alpha) }
            on b { device none; disk /dev/sdb1; address 127.0.0.2:7789; meta-disk internal; }
        }
        """
    }
    private let files = "tls-certificate /etc/repd/node.pem; tls-privkey /etc/repd/node-key.pem; tls-ca /etc/repd/ca.pem;"

    func testTLSYesNeedsCertificateKeyAndCA() {
        let found = diagnostics(resource(net: "tls yes; tls-certificate /etc/repd/node.pem;"))
        XCTAssertEqual(found.count, 1, "\(found)")
        XCTAssertTrue(found.first?.hasPrefix("t.res:2:") == true, "\(found)")
        XCTAssertTrue(found.first?.contains("tls yes needs 'tls-privkey' and 'tls-ca'") == true, "\(found)")
        XCTAssertEqual(diagnostics(resource(net: "tls yes; \(files)")), [])
        XCTAssertEqual(diagnostics(resource(net: "tls no;")), [])
    }

    func testNBDTLSNeedsACertificateOfItsOwnOrTheNetSections() {
        let found = diagnostics(resource(alpha: "nbd-address 127.0.0.1:10809; nbd-tls require;"))
        XCTAssertEqual(found.count, 1, "\(found)")
        XCTAssertTrue(found.first?.contains("nbd-tls require in 'on a' needs a certificate and its key") == true, "\(found)")
        XCTAssertEqual(diagnostics(resource(net: files, alpha: "nbd-address 127.0.0.1:10809; nbd-tls require;")), [])
        XCTAssertEqual(diagnostics(resource(alpha: "nbd-tls allow; nbd-tls-certificate /c.pem; nbd-tls-privkey /k.pem;")), [])
        XCTAssertFalse(diagnostics(resource(alpha: "nbd-tls sometimes;")).isEmpty)
    }

    func testAnOpenNBDAddressIsAcceptedWithTLSRequiredOnly() {
        let own = "nbd-tls-certificate /c.pem; nbd-tls-privkey /k.pem;"
        XCTAssertEqual(diagnostics(resource(alpha: "nbd-address 0.0.0.0:10809; nbd-tls require; \(own)")), [])
        let allow = diagnostics(resource(alpha: "nbd-address 0.0.0.0:10809; nbd-tls allow; \(own)"))
        XCTAssertEqual(allow.count, 1, "\(allow)")
        XCTAssertTrue(allow.first?.contains("`nbd-tls require;`") == true, "\(allow)")
    }

    func testTheResolvedResourceCarriesTheTLSSettingsAndTheBodyIsInherited() throws {
        let text = resource(net: "tls yes; \(files)", body: "nbd-tls require; nbd-tls-ca /etc/repd/clients.pem;",
                            alpha: "nbd-tls-certificate /c.pem; nbd-tls-privkey /k.pem;")
        let directory = try makeDirectory(["r.res": text], testCase: self)
        let resolved = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a")
        XCTAssertTrue(resolved.net.tls)
        XCTAssertEqual(resolved.net.tlsCertificate, "/etc/repd/node.pem")
        XCTAssertEqual(resolved.net.tlsPrivateKey, "/etc/repd/node-key.pem")
        XCTAssertEqual(resolved.net.tlsCA, "/etc/repd/ca.pem")
        XCTAssertEqual(resolved.local.nbdTLS, .require)
        XCTAssertEqual(resolved.local.nbdTLSCertificate, "/c.pem")
        XCTAssertEqual(resolved.local.nbdTLSPrivateKey, "/k.pem")
        XCTAssertEqual(resolved.local.nbdTLSCA, "/etc/repd/clients.pem")
        XCTAssertEqual(resolved.peer?.nbdTLS, .require)
    }

    func testAdjustTakesLinkTLSAtTheNextConnectionAndRefusesNBDTLSChanges() throws {
        let old = try resolve(resource(net: files))
        let new = try resolve(resource(net: "tls yes; \(files)", alpha: "nbd-tls allow; nbd-tls-certificate /c.pem; nbd-tls-privkey /k.pem;"))
        let plan = AdjustPlan(running: old, file: new)
        let tls = try XCTUnwrap(plan.changes.first { $0.name == "tls" })
        XCTAssertEqual(tls.effect, .nextConnection)
        XCTAssertTrue(plan.refusals.contains { $0.name == "nbd-tls" }, "\(plan.changes)")
    }

    private func resolve(_ text: String) throws -> ResolvedResource {
        let directory = try makeDirectory(["r.res": text], testCase: self)
        return try ConfigLoader(directory: directory).resolve(resource: "r", node: "a")
    }
}
