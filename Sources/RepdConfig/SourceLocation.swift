/// A position in a configuration file: 1-based line and column of a token.
///
/// Columns count Unicode scalars, so a tab counts as one column.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file as it was opened (directory joined with the file name, or the name given to
    /// ``ConfigLoader/diagnostics(parsing:file:)``).
    public var file: String
    /// 1-based line number.
    public var line: Int
    /// 1-based column number.
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, the form editors and compilers use.
    public var description: String { "\(file):\(line):\(column)" }

    /// `line:column`, for messages that point elsewhere in the same file.
    var lineAndColumn: String { "\(line):\(column)" }
}
