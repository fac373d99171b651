import Foundation
import SafeTuneFuzz
import Testing
import TestSupport

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

    /// The parsers that run in this process. Checkpoints are read through a helper process,
    /// which needs an executable, so they are fuzzed by a child `safetune-fuzz`.
    static let inProcess = FuzzTarget.allCases.filter { $0 != .checkpoint }

    @Test(.enabled(if: BuiltBinary.fuzzer.url != nil, "safetune-fuzz not found next to the test bundle; build it with `swift build`"))
    func checkpointMutantsInChildProcess() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-fuzztest-ckpt-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // The fuzzer reads checkpoints as `safetune` does, through a helper process; the
        // seed was chosen because its mutants crash and hang libhdf5 when read in-process.
        let r = try BuiltBinary.fuzzer.run(["--target", "checkpoint", "--iterations", "\(Self.iterations(.checkpoint))",
                                            "--seed", "20240601", "--corpus", Self.corpus.path, "--scratch", scratch.path,
                                            "--hang-seconds", "10", "--json"])
        #expect(!r.crashed && r.status == 0, "checkpoint fuzzing died (status \(r.status)): \(r.err.suffix(2000))")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(report["tried"] as? Int == Self.iterations(.checkpoint))
        #expect(report["findings"] as? Int == 0)
    }

    /// The fuzzer keeps one checkpoint helper for many files, which reads each in a fork of
    /// its own. After a file that crashes libhdf5 and one it loops on, good files still
    /// read, and a rejected file gets the same description as when read in-process.
    @Test(.enabled(if: BuiltBinary.fuzzer.url != nil, "safetune-fuzz not found next to the test bundle; build it with `swift build`"))
    func keptHelperSurvivesCrashesAndHangs() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-fuzztest-kept-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let hostile = Self.corpus.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/CheckpointsTests/Fixtures/hostile")
        let good = Self.corpus.appendingPathComponent("checkpoint/tiny-gpt2.h5")
        let truncated = folder.appendingPathComponent("truncated.h5")
        try Data(try Data(contentsOf: good).prefix(12_000)).write(to: truncated)
        let files = [hostile.appendingPathComponent("libhdf5-hang.h5"), good, hostile.appendingPathComponent("libhdf5-segfault.h5"),
                     good, truncated, Self.corpus.appendingPathComponent("checkpoint/tiny-adapters.h5")].map(\.path)
        let kept = try BuiltBinary.fuzzer.run(["replay", "--target", "checkpoint", "--read-seconds", "1"] + files)
        #expect(kept.status == 0, "\(kept.err.suffix(2000))")
        let outcomes = kept.out.split(separator: "\n").map { $0.split(separator: ": ", maxSplits: 1).last.map(String.init) ?? "" }
        try #require(outcomes.count == files.count, "\(kept.out)")
        #expect(outcomes[0].contains("did not finish within 1.0 s of processor time in a helper process"))
        #expect(outcomes[1] == "accepted")
        #expect(outcomes[2].contains("crashed a helper process (signal 11"))
        #expect(outcomes[3] == "accepted")
        #expect(outcomes[5] == "accepted")
        // The rejection crosses the process boundary unchanged (each replay names its own scratch copy).
        let alone = try BuiltBinary.fuzzer.run(["replay", "--target", "checkpoint", "--in-process", truncated.path])
        func afterScratch(_ line: String) -> String? { line.range(of: "input.h5").map { String(line[$0.upperBound...]) } }
        let inProcess = try #require(afterScratch(alone.out.trimmingCharacters(in: .newlines)), "\(alone.out)")
        #expect(outcomes[4].hasPrefix("rejected("))
        #expect(afterScratch(outcomes[4]) == inProcess)
    }

    /// Found by the checkpoint campaign (seed 9206, input 13,129): a group name holding a
    /// line break split the rejection over two lines. Every `CheckpointError` description
    /// now escapes line breaks.
    @Test(.enabled(if: BuiltBinary.fuzzer.url != nil, "safetune-fuzz not found next to the test bundle; build it with `swift build`"))
    func aLineBreakInAGroupNameStaysOnOneLine() throws {
        let file = Self.corpus.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/CheckpointsTests/Fixtures/hostile/newline-in-name.h5")
        let r = try BuiltBinary.fuzzer.run(["replay", "--target", "checkpoint", "--read-seconds", "5", file.path])
        #expect(r.status == 0 && r.out.contains("rejected(") && r.out.contains(#"transformer.h.0.att\\u{a}.c_attn/A"#), "\(r.out)")
    }

    @Test(arguments: inProcess)
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
