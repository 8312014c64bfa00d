/// Splits configuration text into tokens.
///
/// `#` starts a comment to the end of the line (outside strings). Strings are double-quoted, may
/// not span lines, and know the escapes `\"`, `\\`, `\n` and `\t`; any other escaped character
/// stands for itself. A string that reaches the end of its line is reported and ends there, so
/// parsing continues on the next line.
struct Lexer {
    private let scalars: [Unicode.Scalar]
    private let file: String
    private var index = 0
    private var line = 1
    private var column = 1
    private(set) var diagnostics: [ConfigDiagnostic] = []

    init(text: String, file: String) {
        scalars = Array(text.unicodeScalars)
        self.file = file
    }

    /// Every token of the text, ending with one `.endOfFile`, and the lexical errors.
    static func tokenize(_ text: String, file: String) -> (tokens: [Token], diagnostics: [ConfigDiagnostic]) {
        var lexer = Lexer(text: text, file: file)
        var tokens: [Token] = []
        while true {
            let token = lexer.next()
            tokens.append(token)
            if token.kind == .endOfFile { break }
        }
        return (tokens, lexer.diagnostics)
    }

    private var here: SourceLocation { SourceLocation(file: file, line: line, column: column) }

    private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private mutating func advance() {
        if scalars[index] == "\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        index += 1
    }

    private static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0B}" || c == "\u{0C}"
    }

    private static func endsWord(_ c: Unicode.Scalar) -> Bool {
        isSpace(c) || c == "{" || c == "}" || c == ";" || c == "\"" || c == "#"
    }

    mutating func next() -> Token {
        skipSpaceAndComments()
        let start = here
        guard let c = current else { return Token(kind: .endOfFile, text: "", location: start) }
        switch c {
        case "{":
            advance()
            return Token(kind: .openBrace, text: "{", location: start)
        case "}":
            advance()
            return Token(kind: .closeBrace, text: "}", location: start)
        case ";":
            advance()
            return Token(kind: .semicolon, text: ";", location: start)
        case "\"":
            return quotedString(start: start)
        default:
            var text = ""
            while let c = current, !Self.endsWord(c) {
                text.unicodeScalars.append(c)
                advance()
            }
            return Token(kind: .word, text: text, location: start)
        }
    }

    private mutating func skipSpaceAndComments() {
        while let c = current {
            if Self.isSpace(c) {
                advance()
            } else if c == "#" {
                while let c = current, c != "\n" { advance() }
            } else {
                return
            }
        }
    }

    private mutating func quotedString(start: SourceLocation) -> Token {
        advance()  // opening quote
        var text = ""
        while let c = current {
            switch c {
            case "\"":
                advance()
                return Token(kind: .string, text: text, location: start)
            case "\n":
                return unterminated(text, start: start)
            case "\\":
                advance()
                guard let escaped = current, escaped != "\n" else { return unterminated(text, start: start) }
                switch escaped {
                case "n": text += "\n"
                case "t": text += "\t"
                default: text.unicodeScalars.append(escaped)
                }
                advance()
            default:
                text.unicodeScalars.append(c)
                advance()
            }
        }
        return unterminated(text, start: start)
    }

    private mutating func unterminated(_ text: String, start: SourceLocation) -> Token {
        diagnostics.append(ConfigDiagnostic(location: start, message: "unterminated string (missing closing '\"')"))
        var token = Token(kind: .string, text: text, location: start)
        token.isUnterminated = true
        return token
    }
}
