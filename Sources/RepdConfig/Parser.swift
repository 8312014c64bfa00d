/// Turns tokens into a tree of statements, reporting and recovering from syntax errors.
///
/// A statement is words ended by `;`, or words followed by a `{ ... }` block. Recovery:
/// - a `;` is missing when a statement reaches a `}` or the end of the file, or when the next
///   line starts with a keyword of the current block and the statement already has all the
///   values it can take (`protocol C` then `allow-two-primaries;`); the statement ends there;
/// - a `}` is missing when a block meets a section it cannot contain (a `resource` inside a
///   resource, an `on` inside `net`); the block ends there and the section goes to its parent;
/// - a `}` without a `{` at the top level is reported and skipped.
struct Parser {
    private let tokens: [Token]
    private var position = 0
    private var diagnostics: [ConfigDiagnostic] = []

    private init(tokens: [Token]) {
        self.tokens = tokens
    }

    /// The statements of `text`, and every lexical and syntax error in it.
    static func parse(_ text: String, file: String) -> (statements: [Statement], diagnostics: [ConfigDiagnostic]) {
        let (tokens, lexical) = Lexer.tokenize(text, file: file)
        var parser = Parser(tokens: tokens)
        let statements = parser.parseBlock(.file).statements
        return (statements, lexical + parser.diagnostics)
    }

    private var current: Token { tokens[position] }

    private mutating func report(_ location: SourceLocation, _ message: String) {
        diagnostics.append(ConfigDiagnostic(location: location, message: message))
    }

    /// Parses statements up to and including the block's `}`, or up to (not including) a section
    /// that belongs to an enclosing block, or the end of the file. `closed` says whether the `}`
    /// was found.
    private mutating func parseBlock(_ kind: BlockKind) -> (statements: [Statement], closed: Bool) {
        var statements: [Statement] = []
        while true {
            let token = current
            switch token.kind {
            case .endOfFile:
                return (statements, false)
            case .closeBrace:
                position += 1
                if kind == .file {
                    report(token.location, "unexpected '}' with no matching '{'")
                    continue
                }
                return (statements, true)
            case .semicolon:
                position += 1  // an empty statement is harmless
            case .openBrace:
                position += 1
                report(token.location, "unexpected '{' without a section name before it")
                if !skipBlock() { report(token.location, "missing '}' to close '{'") }
            case .word, .string:
                let start = position
                let words = readWords(in: kind)
                guard current.kind == .openBrace else {
                    statements.append(Statement(words: words))
                    continue
                }
                if let header = words[0].keyword, kind.cannotContain(header: header) {
                    position = start  // the enclosing block takes it from here
                    return (statements, false)
                }
                let open = current.location
                position += 1
                let childKind = kind.child(for: words[0].keyword)
                let (children, closed): ([Statement], Bool) =
                    childKind == .skipped ? ([], skipBlock()) : parseBlock(childKind)
                if !closed {
                    report(words[0].location, "missing '}' to close '\(Statement.spell(words))'")
                }
                statements.append(Statement(words: words, block: Statement.Block(kind: childKind, statements: children, open: open)))
            }
        }
    }

    /// Reads the words of one statement and consumes its `;` (a `{` is left for the caller).
    /// Reports a missing `;`.
    private mutating func readWords(in kind: BlockKind) -> [Word] {
        var words: [Word] = []
        while current.isWordLike {
            let next = Word(current)
            if let last = words.last, next.location.line > last.location.line {
                if last.isUnterminated { return words }  // already reported; the string ended the line
                if statementIsComplete(words, before: next, in: kind) {
                    report(last.location, "missing ';' after '\(Statement.spell(words))'")
                    return words
                }
            }
            words.append(next)
            position += 1
        }
        switch current.kind {
        case .semicolon:
            position += 1
        case .openBrace:
            break
        default:  // `}` or end of file
            if let last = words.last, !last.isUnterminated {
                report(last.location, "missing ';' after '\(Statement.spell(words))'")
            }
        }
        return words
    }

    /// Whether `words` would be a whole statement if `next` (on a later line) starts a new one.
    private func statementIsComplete(_ words: [Word], before next: Word, in kind: BlockKind) -> Bool {
        let nextIsKeyword = next.keyword.map { kind.keywords.contains($0) } ?? false
        guard let name = words[0].keyword, let arity = kind.arity(of: name) else { return nextIsKeyword }
        let values = words.count - 1
        return values >= arity.upperBound || (values >= arity.lowerBound && nextIsKeyword)
    }

    /// Skips a block whose `{` was consumed, up to its matching `}`. Returns whether it was found.
    private mutating func skipBlock() -> Bool {
        var depth = 1
        while true {
            switch current.kind {
            case .endOfFile: return false
            case .openBrace: depth += 1
            case .closeBrace:
                depth -= 1
                if depth == 0 {
                    position += 1
                    return true
                }
            default: break
            }
            position += 1
        }
    }
}
