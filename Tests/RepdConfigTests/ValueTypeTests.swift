import RepdConfig
import RepdCore
import XCTest

final class ValueTypeTests: XCTestCase {
    func testNetworkAddressDescriptions() {
        XCTAssertEqual(NetworkAddress(family: .ipv4, host: "127.0.0.1", port: 7789).description, "127.0.0.1:7789")
        XCTAssertEqual(NetworkAddress(family: .ipv6, host: "::1", port: 7789).description, "[::1]:7789")
        XCTAssertEqual(NetworkAddress.AddressFamily.ipv6, AddressFamily.ipv6)
        XCTAssertEqual(AddressFamily(rawValue: "ipv4"), .ipv4)
    }

    func testMetaDiskDescriptions() {
        XCTAssertEqual(MetaDisk.internal.description, "internal")
        XCTAssertEqual(MetaDisk.external(path: "/dev/sdb1", index: nil).description, "/dev/sdb1")
        XCTAssertEqual(MetaDisk.external(path: "/dev/sdb1", index: 0).description, "/dev/sdb1[0]")
    }

    func testSplitBrainPolicySpellings() {
        XCTAssertEqual(AfterSB0Pri.discardYoungerPrimary.description, "discard-younger-primary")
        XCTAssertEqual(AfterSB0Pri.discardNode("alice").description, "discard-node-alice")
        XCTAssertEqual(AfterSB0Pri(drbdName: "discard-least-changes"), .discardLeastChanges)
        XCTAssertEqual(AfterSB0Pri(drbdName: "discard-node-bob"), .discardNode("bob"))
        XCTAssertNil(AfterSB0Pri(drbdName: "discard-node-"))
        XCTAssertNil(AfterSB0Pri(drbdName: "consensus"))
        XCTAssertEqual(AfterSB1Pri(rawValue: "call-pri-lost-after-sb"), .callPriLostAfterSB)
        XCTAssertEqual(AfterSB2Pri.allCases.map(\.rawValue), ["disconnect", "violently-as0p", "call-pri-lost-after-sb"])
        XCTAssertEqual(RRConflict.allCases.map(\.rawValue), ["disconnect", "retry-connect", "violently", "call-pri-lost"])
        XCTAssertEqual(ReplicationProtocol.allCases.map(\.rawValue), ["A", "B", "C"])
    }

    func testAddressForms() throws {
        func address(_ text: String) throws -> NetworkAddress {
            let resource = """
                resource r {
                    on a { device /dev/drbd1; disk /dev/sdb; address \(text); meta-disk internal; }
                }

                """
            let directory = try makeDirectory(["r.res": resource], testCase: self)
            return try ConfigLoader(directory: directory).resolve(resource: "r", node: "a").local.address
        }
        XCTAssertEqual(try address("10.0.0.1:7789"), NetworkAddress(family: .ipv4, host: "10.0.0.1", port: 7789))
        XCTAssertEqual(try address("ipv4 10.0.0.1:1"), NetworkAddress(family: .ipv4, host: "10.0.0.1", port: 1))
        XCTAssertEqual(try address("ipv6 [FD00::1]:65535"), NetworkAddress(family: .ipv6, host: "fd00::1", port: 65535))
        XCTAssertEqual(try address("[::ffff:10.0.0.1]:7789").host, "::ffff:10.0.0.1")
        XCTAssertEqual(try address("ipv6 [fe80::1%eth0]:7789").host, "fe80::1%eth0")
        XCTAssertEqual(try address("ipv6 [1:2:3:4:5:6:7:8]:7789").family, .ipv6)
    }

    func testInvalidIPv6Addresses() {
        for bad in ["[1::2::3]:7789", "[12345::1]:7789", "[1:2:3:4:5:6:7:8:9]:7789", "[fd00::g]:7789", "[]:7789"] {
            let text = "resource r {\n  on a { device /dev/drbd1; disk /dev/sdb; address \(bad); meta-disk internal; }\n}\n"
            let host = String(bad.dropFirst().prefix { $0 != "]" })
            XCTAssertEqual(
                diagnostics(text),
                ["t.res:2:52: invalid address '\(bad)': '\(host)' is not a valid IPv6 address"], bad)
        }
    }
}

/// `device none;` (repd extension): no block device, the export only.
final class DeviceNoneTests: XCTestCase {
    func testDeviceNoneResolvesRendersAndReparses() throws {
        let text = """
            resource r {
                on a { device none; disk /dev/sdb; address 10.0.0.1:7789; meta-disk internal; }
                on b { device /dev/drbd4; disk /dev/sdb; address 10.0.0.2:7789; meta-disk internal; }
            }

            """
        let directory = try makeDirectory(["r.res": text], testCase: self)
        let a = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a")
        XCTAssertEqual(a.local.device, HostConfig.noDevice)
        XCTAssertNil(a.local.minor)
        XCTAssertFalse(a.local.wantsDevice)
        XCTAssertTrue(a.peer!.wantsDevice)
        XCTAssertEqual(a.peer?.minor, 4)
        XCTAssertTrue(a.rendered().contains("device none;"), a.rendered())
        let again = try makeDirectory(["r.res": a.rendered()], testCase: self)
        XCTAssertEqual(try ConfigLoader(directory: again).resolve(resource: "r", node: "a"), a)
    }

    func testQuotedNoneIsARelativePathAndRefused() {
        let text = "resource r {\n  on a { device \"none\"; disk /dev/sdb; address 10.0.0.1:7789; meta-disk internal; }\n}\n"
        XCTAssertEqual(diagnostics(text), ["t.res:2:17: device 'none' must be an absolute path such as /dev/drbd1"])
    }
}
