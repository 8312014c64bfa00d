/// LVM physical volume labels, and whether LVM itself sees one on a given device.
///
/// An LVM2 PV label sits in one of the first four 512-byte sectors: `LABELONE` at byte 0 of the
/// sector, the sector's own number at byte 8, and the type `LVM2 001` at byte 24. A backing disk
/// that carries one (because the replicated device above it was made a PV) shows LVM the same PV
/// twice: through the replicated device and, behind repd's back, through the backing disk.
public enum LVMLabel {
    public static let scanSectors = 4

    /// The sector (0...3) holding an LVM2 label in `bytes` (the first 2 KiB of a device), or nil.
    public static func sector(in bytes: [UInt8]) -> Int? {
        let magic = Array("LABELONE".utf8), type = Array("LVM2 001".utf8)
        for sector in 0..<scanSectors {
            let base = sector * 512
            guard bytes.count >= base + 32 else { break }
            if Array(bytes[base..<(base + 8)]) == magic && Array(bytes[(base + 24)..<(base + 32)]) == type {
                return sector
            }
        }
        return nil
    }

    /// Whether the file or device at `path` starts with an LVM2 label.
    public static func present(at path: String) -> Bool {
        guard let file = try? BlockFile.open(path, access: .readOnly) else { return false }
        defer { file.close() }
        guard let bytes = try? file.read(count: scanSectors * 512, at: 0) else { return false }
        return sector(in: bytes) != nil
    }

    /// The device nodes through which the system's LVM sees a PV on `path`: the device itself when
    /// it is a block device, or a loop device bound to it when it is a file, as `pvs` (with the
    /// system's configuration: filters, devices file) lists them. Empty when LVM is not installed
    /// or does not see it. `pvs` runs read-only, without locking, bounded in time.
    public static func visibleThrough(_ path: String, timeoutSeconds: Int = 15) -> [String] {
        var candidates: [BlockDeviceNumber: String] = [:]
        if let number = BlockDeviceNumber.of(path: path) {
            candidates[number] = path
        } else {
            for loop in LoopDevice.devices(backedBy: path) {
                if let number = BlockDeviceNumber.of(path: loop) { candidates[number] = loop }
            }
        }
        guard !candidates.isEmpty, let lvm = Command.find("lvm") else { return [] }
        let outcome = Command.run(
            [lvm, "pvs", "--readonly", "--nolocking", "--noheadings", "-o", "pv_name"],
            environment: ["LVM_SUPPRESS_FD_WARNINGS": "1"], timeoutSeconds: timeoutSeconds)
        var seen: [String] = []
        for line in outcome.output.split(separator: "\n") {
            let name = line.trimmingWhitespace()
            guard name.hasPrefix("/"), let number = BlockDeviceNumber.of(path: name), let candidate = candidates[number] else { continue }
            seen.append(candidate == name ? name : "\(name) (\(candidate))")
        }
        return seen
    }
}

extension Substring {
    func trimmingWhitespace() -> String { String(self).trimmingWhitespace() }
}
