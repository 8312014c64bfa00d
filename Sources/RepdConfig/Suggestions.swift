/// "Did you mean ...?" for misspelt names.
enum Suggestion {
    /// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo:
    /// one edit for short names, up to three for long ones, none for one- or two-letter words
    /// (every other short word is one edit away). Ties go to the alphabetically first.
    static func closest(to word: String, among candidates: some Sequence<String>) -> String? {
        guard word.count > 2 else { return nil }
        let allowed = max(1, min(3, (word.count + 2) / 4))
        var best: (distance: Int, name: String)?
        for candidate in candidates.sorted() where candidate != word {
            let distance = editDistance(word, candidate)
            if distance <= allowed, distance < (best?.distance ?? Int.max) {
                best = (distance, candidate)
            }
        }
        return best?.name
    }

    /// `; did you mean 'x'?`, or nothing.
    static func hint(for word: String, among candidates: some Sequence<String>) -> String {
        closest(to: word, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    /// Levenshtein distance (insertions, deletions, substitutions), case-sensitive.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var row = Array(repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            row[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                row[j] = min(previous[j] + 1, row[j - 1] + 1, substitution)
            }
            swap(&previous, &row)
        }
        return previous[b.count]
    }
}
