import Foundation
import SafeTuneFuzz
import Testing

/// A short, fixed-seed fuzz run of every parser of outside input: each mutant must parse
/// or be rejected with the module's typed, one-line error. A crash fails the whole test run.
@Suite struct BoundedFuzzTests {
    /// The committed seed corpus (`Fuzz/corpus` at the package root).
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

    /// Inputs per target: a few hundred, sized so the whole suite stays around ten seconds.
    static func iterations(_ target: FuzzTarget) -> Int {
        switch target {
        case .checkpoint: return 200
        case .tokenizer, .recipe: return 300
        default: return 400
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func mutantsParseOrFailWithTypedErrors(_ target: FuzzTarget) throws {
        let seeds = try SeedCorpus.load(target, from: Self.corpus)
        #expect(!seeds.isEmpty, "no seeds for \(target.rawValue)")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-fuzztest-\(target.rawValue)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        try SeedCorpus.prepare(target, corpus: Self.corpus, scratch: scratch)
        let report = FuzzRunner(target: target, seeds: seeds, scratch: scratch)
            .run(seed: 20_240_601, iterations: Self.iterations(target), seconds: nil)
        #expect(report.tried == Self.iterations(target))
        #expect(report.findings.isEmpty, "\(report.findings.prefix(3))")
        // The unmutated seeds are valid, and mutation reaches the parsers' error paths.
        #expect(report.accepted >= seeds.count)
        #expect(report.rejected > 0)
    }

    @Test func seedsAreValidInputs() throws {
        for target in FuzzTarget.allCases {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-fuzzseed-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: scratch) }
            try SeedCorpus.prepare(target, corpus: Self.corpus, scratch: scratch)
            for (i, seed) in try SeedCorpus.load(target, from: Self.corpus).enumerated() {
                #expect(target.run(seed, scratch: scratch) == .accepted, "\(target.rawValue) seed \(i)")
            }
        }
    }

    @Test func sameSeedSameInputs() {
        var a = Mutator(seed: 9, dictionary: [[0x7B]]), b = Mutator(seed: 9, dictionary: [[0x7B]])
        let base = Array("{\"a\": [1, 2, 3]}".utf8)
        for _ in 0..<200 { #expect(a.mutate(base, others: [base]) == b.mutate(base, others: [base])) }
        var c = Mutator(seed: 10)
        #expect((0..<20).map { _ in c.mutate(base, others: []) } != (0..<20).map { _ in a.mutate(base, others: []) })
    }
}
