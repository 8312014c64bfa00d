/// A statement as the parser sees it: words ended by `;` (an option) or followed by a block
/// (a section). What the words mean is for the document builder.
struct Statement: Sendable {
    struct Block: Sendable {
        var kind: BlockKind
        var statements: [Statement]
        /// Where the `{` is.
        var open: SourceLocation
    }

    /// Never empty.
    var words: [Word]
    var block: Block?

    var head: Word { words[0] }
    var arguments: ArraySlice<Word> { words.dropFirst() }
    var location: SourceLocation { head.location }

    /// The statement as written, shortened for messages: `protocol C`, `on alice bob`.
    var spelling: String { Statement.spell(words) }

    static func spell(_ words: [Word]) -> String {
        let text = words.map(\.spelling).joined(separator: " ")
        return text.count > 48 ? String(text.prefix(45)) + "..." : text
    }
}
