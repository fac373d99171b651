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

    /// The parsers that run in this process. Checkpoints go through libhdf5, which can crash
    /// or loop on damaged files (see docs/reliability.md), so they are fuzzed in a child.
    static let inProcess = FuzzTarget.allCases.filter { $0 != .checkpoint }

    /// The `safetune-fuzz` binary next to the test bundle, or nil when it was not built.
    static let fuzzer: URL? = {
        let url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("safetune-fuzz")
        return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
    }()

    @Test(.enabled(if: fuzzer != nil, "safetune-fuzz not found next to the test bundle; build it with `swift build`"))
    func checkpointMutantsInChildProcess() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-fuzztest-ckpt-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let child = Process()
        child.executableURL = Self.fuzzer
        child.arguments = ["--target", "checkpoint", "--iterations", "\(Self.iterations(.checkpoint))", "--seed", "20240601",
                           "--corpus", Self.corpus.path, "--scratch", scratch.path, "--hang-seconds", "10", "--json"]
        let out = Pipe(), err = Pipe()
        child.standardOutput = out
        child.standardError = err
        try child.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        if child.terminationReason == .exit && child.terminationStatus == 0 {
            let report = try #require(try JSONSerialization.jsonObject(with: outData) as? [String: Any])
            #expect(report["tried"] as? Int == Self.iterations(.checkpoint))
            #expect(report["findings"] as? Int == 0)
            return
        }
        // The backtracer names the crashed thread (`Thread 0 "name" crashed:`), then its frames;
        // libhdf5 may be a frame or two down (its own memcpy call).
        let inHDF5 = errText.components(separatedBy: "\" crashed:").dropFirst().first?.split(separator: "\n").prefix(3)
            .contains { $0.contains("libhdf5") } == true
        let hang = child.terminationReason == .exit && child.terminationStatus == 3
        let done = (try? String(contentsOf: scratch.appendingPathComponent("progress"), encoding: .utf8)) ?? "0"
        if inHDF5 || hang {
            withKnownIssue("libhdf5 1.10 follows damaged global-heap references of string attributes (crash or endless loop)") {
                Issue.record("\(hang ? "hang" : "crash in libhdf5") after \(done.trimmingCharacters(in: .whitespacesAndNewlines)) inputs")
            }
        } else {
            Issue.record("checkpoint fuzzing died outside libhdf5 (status \(child.terminationStatus)): \(errText.suffix(2000))")
        }
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
