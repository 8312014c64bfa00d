/// Number formats of the text renderers, written out by hand so that the output never depends on
/// the locale (Foundation's formatters would change "40,480" to "40.480" in Germany).
enum TextFormat {
    /// Two decimals, rounded half away from zero: 42.1 -> "42.10" (DRBD's `%.2f`).
    static func twoDecimals(_ value: Double) -> String {
        let scaled = Int((abs(value) * 100).rounded())
        let fraction = scaled % 100
        return (value < 0 && scaled != 0 ? "-" : "") + "\(scaled / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
    }

    /// Thousands separated by commas, as /proc/drbd prints speeds: 40480 -> "40,480".
    static func thousands(_ value: UInt64) -> String {
        let digits = Array(String(value))
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return result
    }

    /// Hours, minutes and seconds, hours unpadded: 327 -> "0:05:27", 36000 -> "10:00:00".
    static func clock(_ seconds: UInt64) -> String {
        let hours = seconds / 3600
        let minutes = (seconds % 3600) / 60
        let secs = seconds % 60
        return "\(hours):" + pad2(minutes) + ":" + pad2(secs)
    }

    static func pad2(_ value: UInt64) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }

    /// `text` padded with spaces on the right to `width` characters.
    static func padRight(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// `text` padded with spaces on the left to `width` characters.
    static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
