/// One option as written: its name and value words, with their locations.
struct RawOption: Sendable {
    var nameWord: Word
    var values: [Word]

    var name: String { nameWord.text }
    var location: SourceLocation { nameWord.location }
}

/// `net { }`, `disk { }`, ... or `global { }`.
struct OptionSection: Sendable {
    var kind: SectionKind
    /// Where the section keyword is.
    var location: SourceLocation
    var options: [RawOption]
}

/// `on NAME... { }`, with the statements of a `volume` inside it flattened in.
struct HostSection: Sendable {
    var names: [Word]
    /// Where the `on` keyword is.
    var location: SourceLocation
    var options: [RawOption]

    var title: String { (["on"] + names.map(\.spelling)).joined(separator: " ") }
}

struct ResourceDecl: Sendable {
    var name: String
    var nameLocation: SourceLocation
    /// Where the `resource` keyword is.
    var location: SourceLocation
    /// `device`, `disk`, `meta-disk`, `address` written in the resource body (or its `volume`),
    /// inherited by `on` sections that do not set them.
    var hostDefaults: [RawOption] = []
    /// In the order written; a repeated kind is reported, and only the first is used.
    var sections: [OptionSection] = []
    var hosts: [HostSection] = []
}

struct CommonDecl: Sendable {
    var location: SourceLocation
    var sections: [OptionSection] = []
}

struct IncludeDecl: Sendable {
    var pattern: String
    var location: SourceLocation
}

/// What one file says, in DRBD's terms.
struct ConfigDocument: Sendable {
    var file: String
    var globals: [OptionSection] = []
    var commons: [CommonDecl] = []
    var resources: [ResourceDecl] = []
    var includes: [IncludeDecl] = []
}
