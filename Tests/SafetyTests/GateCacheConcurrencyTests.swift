import Checkpoints
import Foundation
@testable import Safety
import Testing
import TestSupport

/// Gates of several processes share a parent's evidence cache (`<parent>.gate/`): two
/// `safetune verify --variants-from-parent` on children of one parent and a `safetune
/// train` whose gate has the same parent, all started together.
@Suite(.enabled(if: BuiltBinary.safetune.url != nil, "safetune binary not found next to the test bundle; build it with `swift build`"))
struct GateCacheConcurrencyTests {
    @Test func concurrentGatesShareTheParentsCache() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try VaccineFixtures.checkpoint(seed: 1)
        let parent = try GateTests.written(p, "parent.h5", in: dir)
        let children = try [2, 3].map { try GateTests.written(VaccineFixtures.checkpoint(seed: UInt64($0), parent: p), "child\($0).h5", in: dir) }
        let pairs = VaccineFixtures.cleanPairs.map { CleanSample(prompt: $0.prompt, completion: $0.completion) }
        let clean = dir.appendingPathComponent("clean.jsonl")
        try CleanData.write(pairs, to: clean)
        let recipe = dir.appendingPathComponent("recipe.yaml")
        try Data("""
            model: {base: parent.h5, template: plain}
            data: {train: [clean.jsonl]}
            adapters: {kind: full}
            optimizer: {name: adamw, lr: 0.01}
            training: {steps: 2, batch_size: 2, seq_len: 32, seed: 1, threads: 1}
            eval: {every: 0, suites: []}
            safety: {gate: {enabled: true, variants: 2, steps: 1, variants_from: parent, rule: share, direction: false, on_reject: quarantine}}
            output: {dir: out, report: false}

            """.utf8).write(to: recipe)

        let verify = children.map {
            ["verify", $0.path, "--reference", parent.path, "--clean", clean.path, "--variants", "2", "--steps", "1",
             "--variants-from-parent", "--rule", "share"]
        }
        let commands = verify + [["train", recipe.path]]
        let results = Results(count: commands.count)
        DispatchQueue.concurrentPerform(iterations: commands.count) { i in
            results.set(i, Result { try BuiltBinary.safetune.run(commands[i]) })
        }
        for (i, result) in results.values.enumerated() {
            let r = try #require(try result?.get())
            // 0 pass, 1 reject (a verdict either way); 2 would be an error.
            #expect(!r.crashed && (r.status == 0 || r.status == 1), "\(commands[i].prefix(2)): status \(r.status): \(r.err)")
            #expect(!r.err.contains("error:"), "\(r.err)")
        }
        // All three ask for the same key (same parent, variant settings and clean data): one
        // fine-tuned the variants, the others waited on the lock, or came later, and read its
        // file. Without the lock, gates started together each fine-tune their own.
        let logs = try results.values.map { try #require(try $0?.get()).err }
        #expect(logs.filter { $0.contains("variants of the parent read from") }.count == 2, "\(logs)")

        // Only complete files: each one decodes under its own key; no temporary file is left.
        let cache = GateEvidenceCache(besideParent: parent)
        let names = try FileManager.default.contentsOfDirectory(atPath: cache.directory.path)
        let files = names.filter { $0.hasSuffix(".json") }
        #expect(files.count == 1 && !names.contains { $0.contains(".tmp-") }, "\(names)")
        for name in files {
            #expect(cache.evidence(for: String(name.dropLast(5))) != nil, "\(name) does not decode")
        }
    }
}

/// Results of concurrent runs, one slot each (written once per slot, read after all finish).
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<BuiltBinary.Result, any Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Result<BuiltBinary.Result, any Error>) { lock.withLock { slots[i] = value } }
    var values: [Result<BuiltBinary.Result, any Error>?] { lock.withLock { slots } }
}
