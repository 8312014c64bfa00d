/// Little-endian field access for the fixed-layout metadata blocks (superblock, activity-log blocks).
/// Internal: the formats themselves are the public API.
enum OnDiskBytes {
    static func store<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        let size = MemoryLayout<T>.size
        precondition(offset >= 0 && offset + size <= bytes.count, "field outside the block")
        var v = value
        for index in 0..<size {
            bytes[offset + index] = UInt8(truncatingIfNeeded: v)
            v = size > 1 ? v >> 8 : 0
        }
    }

    static func load<T: FixedWidthInteger>(_ type: T.Type, from bytes: [UInt8], at offset: Int) -> T {
        let size = MemoryLayout<T>.size
        precondition(offset >= 0 && offset + size <= bytes.count, "field outside the block")
        var value: T = 0
        for index in (0..<size).reversed() {
            value = (size > 1 ? value << 8 : 0) | T(truncatingIfNeeded: bytes[offset + index])
        }
        return value
    }

    /// Writes `text` as UTF-8 into a NUL-padded field of `width` bytes. Text longer than the field is cut at
    /// the last whole Unicode scalar that fits; an embedded NUL ends the text.
    static func storeName(_ text: String, into bytes: inout [UInt8], at offset: Int, width: Int) {
        var position = offset
        let end = offset + width
        for scalar in text.unicodeScalars {
            if scalar.value == 0 { break }
            let encoded = Array(String(scalar).utf8)
            if position + encoded.count > end { break }
            for byte in encoded {
                bytes[position] = byte
                position += 1
            }
        }
        while position < end {
            bytes[position] = 0
            position += 1
        }
    }

    /// Reads a NUL-padded UTF-8 field; nil when the bytes before the first NUL are not valid UTF-8.
    static func loadName(from bytes: [UInt8], at offset: Int, width: Int) -> String? {
        let field = bytes[offset..<(offset + width)]
        let text = field.prefix { $0 != 0 }
        return String(validating: text, as: UTF8.self)
    }

    /// Lower-case hexadecimal with a fixed number of digits, e.g. `hex(0xAB, digits: 8) == "000000ab"`.
    static func hex<T: BinaryInteger>(_ value: T, digits: Int) -> String {
        let text = String(value, radix: 16)
        return text.count >= digits ? text : String(repeating: "0", count: digits - text.count) + text
    }
}
