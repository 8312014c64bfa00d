import RepdConfig
import XCTest

/// Numbers, their default units and unit suffixes, and the defaults of the typed options.
final class UnitTests: XCTestCase {
    /// Resolves resource `r` for host `a`, with `body` in the resource.
    private func resolve(_ body: String) throws -> ResolvedResource {
        let directory = try makeDirectory(["r.res": minimalResource(body: body)], testCase: self)
        return try ConfigLoader(directory: directory).resolve(resource: "r", node: "a")
    }

    func testDefaultsAreDRBDs() throws {
        let resource = try resolve("")
        XCTAssertEqual(resource.net, NetOptions())
        XCTAssertEqual(resource.disk, DiskOptions())
        XCTAssertEqual(resource.startup, StartupOptions())
        XCTAssertEqual(resource.handlers, [:])
        XCTAssertEqual(resource.sections, ["net": [], "disk": [], "startup": [], "handlers": [], "options": []])
        XCTAssertEqual(NetOptions().timeoutDeciseconds, 60)
        XCTAssertEqual(DiskOptions().resyncRateBytesPerSecond, 250 * 1024)
        XCTAssertEqual(DiskOptions().cFillTargetBytes, 51_200)
    }

    func testResyncRateIsKiBPerSecondByDefault() throws {
        let table: [(String, Int)] = [
            ("10M", 10 * 1024 * 1024),  // 10 MiB/s
            ("100", 100 * 1024),  // no unit: KiB/s
            ("100k", 100 * 1024),
            ("100K", 100 * 1024),
            ("1G", 1 << 30),
            ("2048s", 1 << 20),  // 2048 sectors of 512 bytes
        ]
        for (value, bytesPerSecond) in table {
            let disk = try resolve("  disk { resync-rate \(value); }").disk
            XCTAssertEqual(disk.resyncRateBytesPerSecond, bytesPerSecond, value)
        }
    }

    func testTimesAreInTheirDRBDUnits() throws {
        let net = try resolve("  net { timeout 60; ping-timeout 10; connect-int 15; ping-int 3; }").net
        XCTAssertEqual(net.timeoutDeciseconds, 60)  // 6 seconds
        XCTAssertEqual(Double(net.timeoutDeciseconds) / 10, 6.0)
        XCTAssertEqual(net.pingTimeoutDeciseconds, 10)  // 1 second
        XCTAssertEqual(net.connectIntervalSeconds, 15)
        XCTAssertEqual(net.pingIntervalSeconds, 3)
        let startup = try resolve("  startup { wfc-timeout 300; degr-wfc-timeout 60; outdated-wfc-timeout 5; wait-after-sb; }").startup
        XCTAssertEqual(startup.wfcTimeoutSeconds, 300)
        XCTAssertEqual(startup.degrWfcTimeoutSeconds, 60)
        XCTAssertEqual(startup.outdatedWfcTimeoutSeconds, 5)
        XCTAssertTrue(startup.waitAfterSB)
    }

    func testSizesAndRates() throws {
        let disk = try resolve("  disk { c-fill-target 10M; c-max-rate 720M; c-min-rate 0; c-plan-ahead 0; c-delay-target 30; al-extents 3389; size 10G; }").disk
        XCTAssertEqual(disk.cFillTargetBytes, 10 << 20)
        XCTAssertEqual(disk.cMaxRateBytesPerSecond, 720 << 20)
        XCTAssertEqual(disk.cMinRateBytesPerSecond, 0)
        XCTAssertEqual(disk.cPlanAheadDeciseconds, 0)
        XCTAssertEqual(disk.cDelayTargetDeciseconds, 30)
        XCTAssertEqual(disk.alExtents, 3389)
        XCTAssertEqual(disk.sizeBytes, 10 << 30)
        XCTAssertEqual(try resolve("  disk { c-fill-target 200; }").disk.cFillTargetBytes, 200 * 512)  // sectors
        XCTAssertNil(try resolve("  disk { size 0; }").disk.sizeBytes)  // 0: the whole device

        let net = try resolve("  net { sndbuf-size 512k; rcvbuf-size 0; max-buffers 8k; max-epoch-size 8000; ko-count 0; }").net
        XCTAssertEqual(net.sndbufSize, 512 * 1024)  // bytes
        XCTAssertEqual(net.rcvbufSize, 0)
        XCTAssertEqual(net.maxBuffers, 8192)  // a count: K multiplies by 1024
        XCTAssertEqual(net.maxEpochSize, 8000)
        XCTAssertEqual(net.koCount, 0)
    }

    func testEnumsFlagsAndStrings() throws {
        let resource = try resolve("""
              net {
                protocol b;
                always-asbp yes;
                after-sb-0pri discard-node-b;
                after-sb-1pri call-pri-lost-after-sb;
                after-sb-2pri violently-as0p;
                rr-conflict retry-connect;
                cram-hmac-alg sha1;
                shared-secret "with \\"quotes\\" and \\\\";
                data-integrity-alg sha1;
              }
              disk { on-io-error call-local-io-error; fencing resource-and-stonith; }
              handlers { pri-lost-after-sb "/usr/lib/drbd/notify-pri-lost-after-sb.sh; reboot -f"; }
            """)
        XCTAssertEqual(resource.net.protocol, .B)  // case-insensitive, as in DRBD
        XCTAssertTrue(resource.net.alwaysASBP)
        XCTAssertEqual(resource.net.afterSB0Pri, .discardNode("b"))
        XCTAssertEqual(resource.net.afterSB1Pri, .callPriLostAfterSB)
        XCTAssertEqual(resource.net.afterSB2Pri, .violentlyAs0p)
        XCTAssertEqual(resource.net.rrConflict, .retryConnect)
        XCTAssertEqual(resource.net.sharedSecret, "with \"quotes\" and \\")
        XCTAssertEqual(resource.net.dataIntegrityAlg, "sha1")
        XCTAssertEqual(resource.disk.onIOError, "call-local-io-error")
        XCTAssertEqual(resource.disk.fencing, "resource-and-stonith")
        XCTAssertEqual(resource.handlers["pri-lost-after-sb"], "/usr/lib/drbd/notify-pri-lost-after-sb.sh; reboot -f")
        // Quoting survives printing and reading back.
        let directory = try makeDirectory(["r.res": resource.rendered()], testCase: self)
        XCTAssertEqual(try ConfigLoader(directory: directory).resolve(resource: "r", node: "a"), resource)
    }

    func testFlagForms() throws {
        XCTAssertTrue(try resolve("  net { allow-two-primaries; }").net.allowTwoPrimaries)
        XCTAssertTrue(try resolve("  net { allow-two-primaries yes; }").net.allowTwoPrimaries)
        XCTAssertFalse(try resolve("  net { allow-two-primaries no; }").net.allowTwoPrimaries)
        let disk = try resolve("  disk { no-disk-drain; md-flushes no; disk-barrier; }").sections["disk"]
        XCTAssertEqual(disk?.map(\.name), ["disk-drain", "md-flushes", "disk-barrier"])
        XCTAssertEqual(disk?.map(\.values), [["no"], ["no"], []])
    }

    func testDeviceForms() throws {
        func host(_ device: String) throws -> HostConfig {
            let text = """
                resource r {
                    on a { device \(device); disk /dev/sdb1; address 127.0.0.1:7789; meta-disk internal; }
                }

                """
            let directory = try makeDirectory(["r.res": text], testCase: self)
            return try ConfigLoader(directory: directory).resolve(resource: "r", node: "a").local
        }
        let minorOnly = try host("minor 7")
        XCTAssertEqual(minorOnly.device, "/dev/drbd7")
        XCTAssertEqual(minorOnly.minor, 7)
        let both = try host("/dev/drbd_web minor 4")
        XCTAssertEqual(both.device, "/dev/drbd_web")
        XCTAssertEqual(both.minor, 4)
        XCTAssertEqual(try host("/dev/drbd12").minor, 12)  // taken from the name, as in DRBD
        XCTAssertNil(try host("/dev/nbd0").minor)
    }
}
