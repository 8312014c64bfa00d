import XCTest
@testable import RepdSystem

/// The pure parts of attaching a block device: netlink encoding, mountinfo, LVM labels, links.
final class NetlinkEncodingTests: XCTestCase {
    func testAttributesArePaddedAndRoundTrip() {
        let attributes: [NetlinkAttribute] = [.u32(1, 7), .u64(2, 1 << 40), .string(10, "repd:r0"), .u8(3, 1)]
        let bytes = NetlinkAttribute.encode(attributes)
        XCTAssertEqual(bytes.count % 4, 0)
        // u32: length 8, type 1, value 7 little-endian.
        XCTAssertEqual(Array(bytes[0..<8]), [8, 0, 1, 0, 7, 0, 0, 0])
        // "repd:r0\0" is 8 bytes: length 12, no padding; u8: length 5 padded to 8.
        XCTAssertEqual(bytes.count, 8 + 12 + 12 + 8)
        let decoded = NetlinkAttribute.decode(bytes[...])
        XCTAssertEqual(decoded.map(\.kind), [1, 2, 10, 3])
        XCTAssertEqual(decoded[0].u32Value, 7)
        XCTAssertEqual(decoded[1].u64Value, 1 << 40)
        XCTAssertEqual(decoded[2].stringValue, "repd:r0")
        XCTAssertEqual(decoded[3].u8Value, 1)
    }

    func testTruncatedAttributeIsIgnored() {
        var bytes = NetlinkAttribute.encode([.u32(1, 7), .u64(2, 9)])
        bytes.removeLast(3)
        XCTAssertEqual(NetlinkAttribute.decode(bytes[...]).map(\.kind), [1])
    }

    func testConnectCarriesTheSocketsNested() {
        let request = NBDKernelDriver.ConnectRequest(
            index: 1, sockets: [5, 6], sizeBytes: 1 << 30, blockSizeBytes: 512, serverFlags: 0x1ED,
            deadConnectionTimeoutSeconds: 60, backend: "repd:r0")
        let attributes = NBDKernelDriver.connectAttributes(request)
        XCTAssertEqual(attributes.map(\.kind), [1, 2, 3, 5, 8, 7, 10])
        let sockets = attributes.first { $0.kind == 7 }!
        XCTAssertNotEqual(sockets.type & NetlinkAttribute.nestedFlag, 0)
        let items = sockets.children
        XCTAssertEqual(items.map(\.kind), [1, 1])
        XCTAssertEqual(items.map { $0.children.first?.u32Value }, [5, 6])
        XCTAssertEqual(attributes.first { $0.kind == 2 }?.u64Value, 1 << 30)
        // Without an index the kernel picks a free device.
        var any = request
        any.index = nil
        XCTAssertFalse(NBDKernelDriver.connectAttributes(any).contains { $0.kind == 1 })
    }

    func testRequestHeaderAndReplies() {
        let message = GenericNetlinkMessage.request(family: 0x1C, command: 1, version: 1, sequence: 42, attributes: [.u32(1, 3)])
        XCTAssertEqual(message.count, 20 + 8)
        XCTAssertEqual(Array(message[0..<4]), [28, 0, 0, 0])
        XCTAssertEqual(Array(message[4..<6]), [0x1C, 0])
        XCTAssertEqual(Array(message[6..<8]), [5, 0], "NLM_F_REQUEST | NLM_F_ACK")
        XCTAssertEqual(Array(message[16..<18]), [1, 1])
        // A reply (the request echoed back) followed by an error message with -EBUSY.
        var ack: [UInt8] = [36, 0, 0, 0, 2, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0]
        ack += NetlinkAttribute.bytes(of: Int32(-16)) + Array(message[0..<16])
        let parsed = GenericNetlinkMessage.parse((message + ack)[...])
        XCTAssertEqual(parsed, [
            .reply(sequence: 42, command: 1, attributes: [.u32(1, 3)]),
            .status(sequence: 42, code: -16),
        ])
    }
}

final class MountInfoTests: XCTestCase {
    func testParsesDeviceNumberMountPointAndType() {
        let text = """
            22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
            36 22 7:3 / /srv/with\\040space rw,relatime shared:2 - ext4 /dev/loop3 rw
            40 22 0:45 / /run/repd/r0.fuse rw,nosuid,nodev - fuse /dev/fuse rw,user_id=0
            """
        let mounts = MountEntry.parse(mountinfo: text)
        XCTAssertEqual(mounts.count, 3)
        XCTAssertEqual(mounts[1].device, BlockDeviceNumber(major: 7, minor: 3))
        XCTAssertEqual(mounts[1].mountPoint, "/srv/with space")
        XCTAssertEqual(mounts[1].fileSystem, "ext4")
        XCTAssertEqual(mounts[1].source, "/dev/loop3")
        XCTAssertEqual(mounts[2].fileSystem, "fuse")
        XCTAssertNil(MountEntry(mountinfoLine: "garbage"))
    }

    func testUserDescriptionsNameWhatHoldsTheDevice() {
        XCTAssertEqual(
            BlockDeviceUser(kind: .mount, device: "/dev/nbd0", user: "/mnt/gfs2", detail: "gfs2").description,
            "/dev/nbd0 is mounted on /mnt/gfs2 (gfs2)")
        XCTAssertEqual(
            BlockDeviceUser(kind: .holder, device: "/dev/nbd0", user: "dm-0", detail: "vg-lv").description,
            "/dev/nbd0 is held by dm-0 (vg-lv)")
    }
}

final class LVMLabelTests: XCTestCase {
    func label(at sector: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 2048)
        bytes.replaceSubrange((sector * 512)..<(sector * 512 + 8), with: Array("LABELONE".utf8))
        bytes.replaceSubrange((sector * 512 + 24)..<(sector * 512 + 32), with: Array("LVM2 001".utf8))
        return bytes
    }

    func testFindsTheLabelInAnyOfTheFirstFourSectors() {
        for sector in 0..<4 { XCTAssertEqual(LVMLabel.sector(in: label(at: sector)), sector) }
        XCTAssertNil(LVMLabel.sector(in: [UInt8](repeating: 0, count: 2048)))
        var wrongType = label(at: 1)
        wrongType[512 + 24] = UInt8(ascii: "X")
        XCTAssertNil(LVMLabel.sector(in: wrongType))
        XCTAssertNil(LVMLabel.sector(in: Array(label(at: 1).prefix(540))), "a short read never matches")
    }
}

final class DeviceLinkTests: XCTestCase {
    func testRelativeTargets() {
        XCTAssertEqual(DeviceLink.relativeTarget(from: "/dev/drbd1", toDevice: "nbd0"), "nbd0")
        XCTAssertEqual(DeviceLink.relativeTarget(from: "/dev/repd/by-res/r0", toDevice: "nbd0"), "../../nbd0")
        XCTAssertEqual(DeviceLink.relativeTarget(from: "/srv/disk", toDevice: "loop3"), "/dev/loop3")
    }

    func testLinksReplaceOnlyLinks() throws {
        let dir = "/tmp/repd-link-test-\(getpid())"
        try ProcessSupport.makeDirectory(dir)
        defer { _ = try? Command.run(["/bin/rm", "-rf", dir], timeoutSeconds: 10) }
        try DeviceLink.create("\(dir)/a/b/link", pointingTo: "/dev/null")
        XCTAssertEqual(DeviceLink.state("\(dir)/a/b/link"), .link("/dev/null"))
        try DeviceLink.create("\(dir)/a/b/link", pointingTo: "/dev/zero")
        XCTAssertEqual(DeviceLink.state("\(dir)/a/b/link"), .link("/dev/zero"))
        XCTAssertFalse(DeviceLink.remove("\(dir)/a/b/link", ifPointingTo: "/dev/null"), "points elsewhere: kept")
        XCTAssertTrue(DeviceLink.remove("\(dir)/a/b/link", ifPointingTo: "/dev/zero"))
        XCTAssertEqual(DeviceLink.state("\(dir)/a/b/link"), .absent)
        try ProcessSupport.writeTextFile("\(dir)/file", "x")
        XCTAssertThrowsError(try DeviceLink.create("\(dir)/file", pointingTo: "/dev/null"), "a file is never replaced")
        XCTAssertEqual(DeviceLink.state("\(dir)/file"), .other)
    }

    func testCommandCollectsOutputAndStatus() {
        let ok = Command.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], timeoutSeconds: 10)
        XCTAssertEqual(ok.result, .exited(3))
        XCTAssertTrue(ok.output.contains("out") && ok.output.contains("err"))
        let slow = Command.run(["/bin/sh", "-c", "sleep 30"], timeoutSeconds: 1)
        XCTAssertEqual(slow.result, .timedOut(seconds: 1))
    }
}
