/// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF),
/// the checksum of every block repd writes to its metadata. Check value of "123456789": 0xE3069283.
///
/// Implemented as slicing-by-8: eight 256-entry tables let the inner loop consume 8 bytes per step.
public enum CRC32C {
    /// The reflected Castagnoli polynomial.
    public static let polynomial: UInt32 = 0x82F6_3B78

    /// CRC-32C of `bytes`. `seed` is the CRC of preceding data, so checksums can be chained:
    /// `checksum(b, seed: checksum(a)) == checksum(a + b)`. The default 0 starts a new checksum.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        ~update(~seed, bytes)
    }

    /// CRC-32C of a byte array.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// Core loop on the raw (non-inverted) CRC register.
    static func update(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return start }
        var crc = start
        let count = bytes.count
        return crcTables.withUnsafeBufferPointer { table -> UInt32 in
            var offset = 0
            // Byte-wise until the pointer is 8-byte aligned (keeps the word loads cheap on any CPU).
            while offset < count, (Int(bitPattern: base) &+ offset) & 7 != 0 {
                crc = table[Int((crc ^ UInt32(base.load(fromByteOffset: offset, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                offset &+= 1
            }
            while count &- offset >= 8 {
                let word = UInt64(littleEndian: base.load(fromByteOffset: offset, as: UInt64.self))
                let low = UInt32(truncatingIfNeeded: word) ^ crc
                let high = UInt32(truncatingIfNeeded: word >> 32)
                crc = table[7 &* 256 &+ Int(low & 0xFF)]
                    ^ table[6 &* 256 &+ Int((low >> 8) & 0xFF)]
                    ^ table[5 &* 256 &+ Int((low >> 16) & 0xFF)]
                    ^ table[4 &* 256 &+ Int(low >> 24)]
                    ^ table[3 &* 256 &+ Int(high & 0xFF)]
                    ^ table[2 &* 256 &+ Int((high >> 8) & 0xFF)]
                    ^ table[1 &* 256 &+ Int((high >> 16) & 0xFF)]
                    ^ table[Int(high >> 24)]
                offset &+= 8
            }
            while offset < count {
                crc = table[Int((crc ^ UInt32(base.load(fromByteOffset: offset, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                offset &+= 1
            }
            return crc
        }
    }
}

/// Eight consecutive 256-entry tables: table k maps a byte to its CRC contribution k bytes further on.
private let crcTables: [UInt32] = {
    var tables = [UInt32](repeating: 0, count: 8 * 256)
    for byte in 0..<256 {
        var crc = UInt32(byte)
        for _ in 0..<8 {
            crc = crc & 1 != 0 ? (crc >> 1) ^ CRC32C.polynomial : crc >> 1
        }
        tables[byte] = crc
    }
    for slice in 1..<8 {
        for byte in 0..<256 {
            let previous = tables[(slice - 1) * 256 + byte]
            tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
        }
    }
    return tables
}()
