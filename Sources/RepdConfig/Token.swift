/// A lexical token of a DRBD-style configuration file.
struct Token: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        /// A bare word: anything up to white space, `{`, `}`, `;`, `"` or `#`. Addresses
        /// (`[::1]:7789`) and indexed paths (`/dev/sdb1[0]`) are single words.
        case word
        /// A double-quoted string; `text` holds the value with escapes resolved.
        case string
        case openBrace
        case closeBrace
        case semicolon
        case endOfFile
    }

    var kind: Kind
    var text: String
    var location: SourceLocation
    /// A string that ran into the end of its line: already reported, and it ends its statement.
    var isUnterminated = false

    var isWordLike: Bool { kind == .word || kind == .string }
}

/// A word or string token as a value: what the parser keeps of it.
struct Word: Sendable, Hashable {
    var text: String
    var isQuoted: Bool
    var location: SourceLocation
    var isUnterminated = false

    init(_ token: Token) {
        text = token.text
        isQuoted = token.kind == .string
        location = token.location
        isUnterminated = token.isUnterminated
    }

    init(text: String, isQuoted: Bool = false, location: SourceLocation) {
        self.text = text
        self.isQuoted = isQuoted
        self.location = location
    }

    /// The text if it is a bare word, so quoted words are never taken for keywords.
    var keyword: String? { isQuoted ? nil : text }

    /// As written, for messages.
    var spelling: String { isQuoted ? Word.quote(text) : text }

    /// A double-quoted form of `text` that the lexer reads back as `text`.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `text` as it must be written to be read back as one word with this value: bare when that
    /// is safe, quoted otherwise.
    static func render(_ text: String) -> String {
        let special: Set<Unicode.Scalar> = [" ", "\t", "\n", "\r", "{", "}", ";", "\"", "#", "\\"]
        if text.isEmpty || text.unicodeScalars.contains(where: { special.contains($0) }) {
            return quote(text)
        }
        return text
    }
}
