import Foundation
import RepdConfig
import XCTest

/// Every file in resources.d parses, resolves for each of its hosts, and survives a round trip
/// through `rendered()`.
final class FixtureTests: XCTestCase {
    private let loader = ConfigLoader(directory: fixturesDirectory)

    /// Resource name -> its hosts (first name of each `on` section), as written in resources.d.
    private let expectedHosts: [String: [String]] = [
        "demo": ["alpha", "beta"],
        "r0": ["linux-nas01", "linux-nas02"],
        "r1-external": ["storage-a", "storage-b"],
        "r2": ["node-1", "node-2"],
    ]

    func testR0IsTheWalkthroughFileUnchanged() throws {
        let text = try String(contentsOfFile: fixturesDirectory + "/r0.res", encoding: .utf8)
        XCTAssertEqual(text, """
            resource r0 {
            on linux-nas01 {
            device /dev/drbd1;
            disk /dev/vda3;
            address 192.168.0.18:7789;
            meta-disk internal;
            }
            on linux-nas02 {
            device /dev/drbd1;
            disk /dev/vda3;
            address 192.168.0.19:7789;
            meta-disk internal;
            }
            startup {
            become-primary-on both;
            }
            net {
            allow-two-primaries;
            after-sb-0pri discard-zero-changes;
            after-sb-1pri discard-secondary;
            after-sb-2pri disconnect;
            }
            }

            """)
    }

    func testEveryFileParsesWithoutDiagnostics() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: fixturesDirectory).sorted()
        XCTAssertEqual(files, ["demo.res", "global_common.conf", "r0.res", "r1-external.res", "r2-volume.res"])
        for file in files {
            let text = try String(contentsOfFile: fixturesDirectory + "/" + file, encoding: .utf8)
            XCTAssertEqual(diagnostics(text, file: file), [], file)
        }
    }

    func testResourceNames() throws {
        XCTAssertEqual(try loader.resourceNames(), ["demo", "r0", "r1-external", "r2"])
    }

    func testEveryResourceResolvesForEachHost() throws {
        for (name, hosts) in expectedHosts {
            for (index, host) in hosts.enumerated() {
                let resolved = try loader.resolve(resource: name, node: host)
                XCTAssertEqual(resolved.name, name)
                XCTAssertTrue(resolved.local.names.contains(host), "\(name) on \(host)")
                XCTAssertEqual(resolved.peer?.names.first, hosts[1 - index], "\(name) on \(host)")
                XCTAssertNotEqual(resolved.local.address, resolved.peer?.address)
                XCTAssertEqual(Set(resolved.sections.keys), ["net", "disk", "startup", "handlers", "options"])
            }
        }
    }

    func testRenderedOutputReparsesToAnEqualResource() throws {
        for (name, hosts) in expectedHosts {
            for host in hosts {
                let original = try loader.resolve(resource: name, node: host)
                let text = original.rendered()
                let directory = try makeDirectory(["\(name).res": text], testCase: self)
                let reparsed = try ConfigLoader(directory: directory).resolve(resource: name, node: host)
                XCTAssertEqual(reparsed, original, "\(name) on \(host):\n\(text)")
                XCTAssertEqual(reparsed.sections, original.sections)
                XCTAssertEqual(reparsed.handlers, original.handlers)
                // Printing is stable: the second rendering differs only in the header comment.
                XCTAssertEqual(
                    reparsed.rendered().split(separator: "\n").dropFirst(),
                    text.split(separator: "\n").dropFirst())
            }
        }
    }

    func testR0ResolvedForLinuxNas01() throws {
        let r0 = try loader.resolve(resource: "r0", node: "linux-nas01")
        XCTAssertEqual(r0.file, fixturesDirectory + "/r0.res")
        XCTAssertEqual(r0.location.line, 1)
        XCTAssertEqual(r0.local.names, ["linux-nas01"])
        XCTAssertEqual(r0.local.device, "/dev/drbd1")
        XCTAssertEqual(r0.local.minor, 1)
        XCTAssertEqual(r0.local.disk, "/dev/vda3")
        XCTAssertEqual(r0.local.address, NetworkAddress(family: .ipv4, host: "192.168.0.18", port: 7789))
        XCTAssertEqual(r0.local.metaDisk, .internal)
        XCTAssertEqual(r0.local.location.line, 2)
        XCTAssertEqual(r0.peer?.address.description, "192.168.0.19:7789")
        XCTAssertEqual(r0.startup.becomePrimaryOn, ["both"])
        XCTAssertTrue(r0.net.allowTwoPrimaries)
        XCTAssertEqual(r0.net.protocol, .C)  // from common
        XCTAssertEqual(r0.net.afterSB0Pri, .discardZeroChanges)
        XCTAssertEqual(r0.net.afterSB1Pri, .discardSecondary)
        XCTAssertEqual(r0.net.afterSB2Pri, .disconnect)
        XCTAssertEqual(r0.net.timeoutDeciseconds, 60)
        XCTAssertEqual(r0.disk.onIOError, "detach")  // from common
        XCTAssertEqual(r0.disk.resyncRateBytesPerSecond, 40 * 1024 * 1024)
        XCTAssertEqual(r0.disk.cFillTargetBytes, 100 * 512)
        XCTAssertEqual(r0.disk.cMinRateBytesPerSecond, 250 * 1024)
        XCTAssertEqual(r0.startup.wfcTimeoutSeconds, 120)
        XCTAssertEqual(r0.handlers["split-brain"], "/usr/lib/drbd/notify-split-brain.sh root")
        XCTAssertEqual(r0.sections["options"], [ConfigOption(name: "on-no-data-accessible", values: ["io-error"], location: r0.location)])
    }

    func testDemoUsesExternalMetadataFilesAndNBD() throws {
        let demo = try loader.resolve(resource: "demo", node: "beta")
        XCTAssertEqual(demo.local.metaDisk, .external(path: "/var/lib/repd/demo-beta.meta", index: nil))
        XCTAssertEqual(demo.local.disk, "/var/lib/repd/demo-beta.img")
        XCTAssertEqual(demo.local.nbdAddress?.description, "127.0.0.2:10809")
        XCTAssertEqual(demo.local.nodeId, 1)
        XCTAssertNil(demo.local.minor)
        XCTAssertEqual(demo.peer?.names, ["alpha"])
        XCTAssertEqual(demo.net.cramHMACAlg, "sha256")
        XCTAssertEqual(demo.net.sharedSecret, "repd-demo: not a real secret")
        XCTAssertEqual(demo.net.verifyAlg, "crc32c")
        XCTAssertEqual(demo.net.csumsAlg, "sha256")
        XCTAssertEqual(demo.disk.resyncRateBytesPerSecond, 10 * 1024 * 1024)
        XCTAssertEqual(demo.disk.cPlanAheadDeciseconds, 0)
        XCTAssertEqual(demo.disk.sizeBytes, 1 << 30)
        XCTAssertEqual(demo.startup.becomePrimaryOn, ["alpha"])
        XCTAssertEqual(demo.startup.wfcTimeoutSeconds, 30)
    }

    func testR1InheritsDeviceAndIndexedMetaDiskFromTheResourceBody() throws {
        let r1 = try loader.resolve(resource: "r1-external", node: "storage-a.example.net")
        XCTAssertEqual(r1.local.names, ["storage-a", "storage-a.example.net"])
        XCTAssertEqual(r1.local.device, "/dev/drbd2")
        XCTAssertEqual(r1.local.minor, 2)
        XCTAssertEqual(r1.local.metaDisk, .external(path: "/dev/sdb1", index: 0))
        XCTAssertEqual(r1.local.metaDisk.description, "/dev/sdb1[0]")
        XCTAssertEqual(r1.peer?.metaDisk, .external(path: "/dev/sdb1", index: 0))
        XCTAssertEqual(r1.local.address, NetworkAddress(family: .ipv6, host: "fd00:10::a", port: 7791))
        XCTAssertEqual(r1.local.address.description, "[fd00:10::a]:7791")
        XCTAssertEqual(r1.net.protocol, .B)
        XCTAssertEqual(r1.net.sndbufSize, 2 << 20)
        XCTAssertEqual(r1.net.afterSB1Pri, .consensus)
        XCTAssertEqual(r1.net.dataIntegrityAlg, "crc32c")
        XCTAssertEqual(r1.disk.fencing, "resource-only")
        XCTAssertEqual(r1.handlers["fence-peer"], "/usr/lib/drbd/crm-fence-peer.sh")
        let disk = r1.sections["disk"] ?? []
        XCTAssertTrue(disk.contains(ConfigOption(name: "disk-flushes", values: ["no"], location: r1.location)))
        XCTAssertTrue(disk.contains(ConfigOption(name: "resync-rate", values: ["100M"], location: r1.location)))
        XCTAssertFalse(disk.contains { $0.name == "resync-rate" && $0.values == ["40M"] }, "overridden common value")
    }

    func testR2ReadsVolumesAndLegacyProtocol() throws {
        let r2 = try loader.resolve(resource: "r2", node: "node-2")
        XCTAssertEqual(r2.file, fixturesDirectory + "/r2-volume.res")
        XCTAssertEqual(r2.net.protocol, .A)
        XCTAssertEqual(r2.net.pingTimeoutDeciseconds, 10)
        XCTAssertEqual(r2.local.device, "/dev/drbd3")
        XCTAssertEqual(r2.local.disk, "/dev/vg0/r2")
        XCTAssertEqual(r2.local.address.description, "10.20.0.2:7792")
        XCTAssertEqual(r2.sections["net"]?.filter { $0.name == "protocol" }.map(\.values), [["A"]])
    }
}
