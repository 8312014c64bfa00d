import Foundation
import RepdConfig
import XCTest

/// Mangled input never crashes the parser, and every diagnostic it produces points into the file.
final class RobustnessTests: XCTestCase {
    /// A small deterministic generator, so a failure can be replayed.
    private struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    func testMutatedFixturesAreDiagnosedWithoutCrashing() throws {
        var random = SplitMix64(state: 0x5EED)
        let pieces = ["{", "}", ";", "\"", "#", "\n", "on", "resource", "net", "[", "]", ":", "minor", "volume 0 {", "skip {"]
        for name in ["r0.res", "demo.res", "r1-external.res", "r2-volume.res", "global_common.conf"] {
            let original = try String(contentsOfFile: fixturesDirectory + "/" + name, encoding: .utf8)
            let words = original.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            for _ in 0..<200 {
                var mutated = words
                for _ in 0..<(1 + random.below(4)) {
                    let index = random.below(mutated.count)
                    switch random.below(4) {
                    case 0: mutated.remove(at: index)
                    case 1: mutated.insert(pieces[random.below(pieces.count)], at: index)
                    case 2: mutated.insert(mutated[random.below(mutated.count)], at: index)
                    default: mutated.swapAt(index, random.below(mutated.count))
                    }
                    if mutated.isEmpty { mutated = [""] }
                }
                let text = mutated.joined(separator: " ")
                let lineCount = text.split(separator: "\n", omittingEmptySubsequences: false).count
                for diagnostic in ConfigLoader.diagnostics(parsing: text, file: name) {
                    guard let location = diagnostic.location else { continue }
                    XCTAssertTrue((1...lineCount).contains(location.line), "\(diagnostic)\n\(text)")
                    XCTAssertGreaterThanOrEqual(location.column, 1)
                    XCTAssertFalse(diagnostic.message.isEmpty)
                }
            }
        }
    }
}
