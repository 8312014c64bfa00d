import RepdConfig
import XCTest

/// `common` gives defaults; a resource's own options override them one by one.
final class CommonMergingTests: XCTestCase {
    private let globalCommon = """
        global { usage-count no; }
        common {
            protocol C;
            net { max-buffers 4000; after-sb-0pri discard-zero-changes; }
            disk { resync-rate 20M; disk-flushes yes; on-io-error detach; }
            startup { wfc-timeout 60; }
            handlers { split-brain "notify-common"; fence-peer "fence-common"; }
            options { cpu-mask 3; }
        }

        """

    private func resolve(_ body: String, node: String = "a") throws -> ResolvedResource {
        let directory = try makeDirectory(
            ["global_common.conf": globalCommon, "r.res": minimalResource(body: body)], testCase: self)
        return try ConfigLoader(directory: directory).resolve(resource: "r", node: node)
    }

    func testResourceInheritsCommon() throws {
        let resource = try resolve("")
        XCTAssertEqual(resource.net.protocol, .C)
        XCTAssertEqual(resource.net.maxBuffers, 4000)
        XCTAssertEqual(resource.net.afterSB0Pri, .discardZeroChanges)
        XCTAssertEqual(resource.disk.resyncRateBytesPerSecond, 20 << 20)
        XCTAssertEqual(resource.disk.onIOError, "detach")
        XCTAssertEqual(resource.startup.wfcTimeoutSeconds, 60)
        XCTAssertEqual(resource.handlers, ["split-brain": "notify-common", "fence-peer": "fence-common"])
        XCTAssertEqual(resource.sections["options"]?.map(\.name), ["cpu-mask"])
        // The 8.3-style `protocol` in common is part of net, after net's own options.
        XCTAssertEqual(resource.sections["net"]?.map(\.name), ["max-buffers", "after-sb-0pri", "protocol"])
    }

    func testResourceOverridesCommonOptionByOption() throws {
        let resource = try resolve("""
              net { protocol A; max-buffers 8000; }
              disk { no-disk-flushes; }
              startup { wfc-timeout 10; }
              handlers { split-brain "notify-own"; }
            """)
        XCTAssertEqual(resource.net.protocol, .A)
        XCTAssertEqual(resource.net.maxBuffers, 8000)
        XCTAssertEqual(resource.net.afterSB0Pri, .discardZeroChanges)  // still common's
        XCTAssertEqual(resource.disk.resyncRateBytesPerSecond, 20 << 20)  // still common's
        XCTAssertEqual(resource.startup.wfcTimeoutSeconds, 10)
        XCTAssertEqual(resource.handlers, ["split-brain": "notify-own", "fence-peer": "fence-common"])
        // Common's options not overridden come first, then the resource's own.
        XCTAssertEqual(resource.sections["net"]?.map(\.name), ["after-sb-0pri", "protocol", "max-buffers"])
        XCTAssertEqual(
            resource.sections["disk"]?.map { "\($0.name) \($0.values.joined(separator: " "))" },
            ["resync-rate 20M", "on-io-error detach", "disk-flushes no"])
        XCTAssertEqual(resource.sections["net"]?.first?.location.file.hasSuffix("global_common.conf"), true)
    }

    func testResourceBodyValuesAreInheritedByOnSections() throws {
        let text = """
            resource r {
                device /dev/drbd5 minor 5;
                disk /dev/vg/r;
                meta-disk internal;
                on a { address 10.1.1.1:7000; }
                on b { address 10.1.1.2:7000; disk /dev/vg/other; meta-disk /dev/vg/meta[3]; }
            }

            """
        let directory = try makeDirectory(["r.res": text], testCase: self)
        let resource = try ConfigLoader(directory: directory).resolve(resource: "r", node: "b")
        XCTAssertEqual(resource.local.device, "/dev/drbd5")
        XCTAssertEqual(resource.local.disk, "/dev/vg/other")
        XCTAssertEqual(resource.local.metaDisk, .external(path: "/dev/vg/meta", index: 3))
        XCTAssertEqual(resource.peer?.disk, "/dev/vg/r")
        XCTAssertEqual(resource.peer?.metaDisk, .internal)
        XCTAssertEqual(resource.peer?.minor, 5)
    }

    func testAnErrorInCommonIsReportedOnceForAllResources() throws {
        let common = "common { net { protocol A; allow-two-primaries; } }\n"
        let directory = try makeDirectory(
            ["global_common.conf": common, "r.res": minimalResource("r"), "s.res": minimalResource("s")], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resourceNames() }, [
            "\(directory)/global_common.conf:1:28: allow-two-primaries requires protocol C (common uses protocol A)"
        ])
    }

    func testResourceOptionBreakingARuleWithCommonNamesTheResource() throws {
        let directory = try makeDirectory(
            ["global_common.conf": "common { net { protocol B; } }\n",
             "r.res": minimalResource(body: "  net { allow-two-primaries; }")], testCase: self)
        XCTAssertEqual(configErrors { _ = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a") }, [
            "\(directory)/r.res:2:9: allow-two-primaries requires protocol C (resource 'r' uses protocol B)"
        ])
    }

    func testDisklessNodeNeedsNoMetaDisk() throws {
        let text = """
            resource r {
                on a { device /dev/drbd1; disk none; address 10.0.0.1:7789; }
                on b { device /dev/drbd1; disk /dev/sdb; address 10.0.0.2:7789; meta-disk internal; }
            }

            """
        let directory = try makeDirectory(["r.res": text], testCase: self)
        let resource = try ConfigLoader(directory: directory).resolve(resource: "r", node: "a")
        XCTAssertEqual(resource.local.disk, "none")
        XCTAssertEqual(resource.local.metaDisk, .internal)
    }
}
