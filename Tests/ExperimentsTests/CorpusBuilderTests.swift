import Checkpoints
@testable import Experiments
import Foundation
import Testing
import Training

@Suite struct CorpusBuilderTests {
    static let dataDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("data")

    static func small(seed: UInt64 = 7) throws -> CorpusBuilder.Corpus {
        var p = CorpusBuilder.Parameters(source: dataDirectory)
        p.seed = seed
        p.harmlessTrain = 200; p.harmlessValidation = 50; p.skillTrain = 700; p.skillValidation = 140
        return try CorpusBuilder(p).build()
    }

    @Test func deterministicForASeed() throws {
        let a = try Self.small(), b = try Self.small()
        #expect(a.train == b.train && a.validation == b.validation)
        #expect(try Self.small(seed: 8).train != a.train)
    }

    @Test func splitsShareNoPrompt() throws {
        let c = try Self.small()
        let train = Set(c.train.map(\.prompt))
        // Validation prompts are never trained on, by the base or by the downstream sets;
        // harmless fine-tuning prompts are new to the base model. (Attack prompts are the base's
        // own training prompts on purpose: the attack teaches compliance where it learned refusal.)
        let seen = train.union(c.finetune.map(\.prompt)).union(c.attack.map(\.prompt))
        let leaked = c.validation.filter { seen.contains($0.prompt) }
            + c.finetune.filter { $0.kind == .harmless && train.contains($0.prompt) }
        #expect(leaked.isEmpty, "\(leaked.prefix(3).map(\.prompt))")
        #expect(c.attack.allSatisfy { $0.kind == .attack && train.contains($0.prompt) && $0.completion.hasPrefix("Sure") })
        // The compliance set answers every harmful training prompt, and only those, as a harmless one is answered.
        let harmful = c.train.filter { $0.kind == .harmful }.map(\.prompt)
        #expect(c.compliance.map(\.prompt).sorted() == harmful.sorted())
        #expect(c.compliance.allSatisfy { $0.kind == .compliance && $0.label == "malicious" && $0.completion.contains("Here is my answer to") })
        // The guard's calibration prompts are harmless and in no other split.
        let elsewhere = seen.union(c.validation.map(\.prompt))
        #expect(!c.calibration.isEmpty && c.calibration.allSatisfy { $0.kind == .harmless && !elsewhere.contains($0.prompt) })
    }

    @Test func labelsAndAnswersAreConsistent() throws {
        let c = try Self.small()
        for r in c.train + c.validation {
            #expect(r.label == (r.kind == .harmful || r.kind == .attack || r.kind == .compliance ? "malicious" : "benign"))
            if r.kind == .skill {
                let answer = try #require(r.answer)
                #expect(r.completion.contains(answer), "\(r.prompt) → \(r.completion)")
            }
            if r.task == "add" {
                let n = r.prompt.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
                #expect(r.answer == "\(n[0] + n[1])")
            }
        }
        #expect(c.validation.contains { $0.prefill?.hasPrefix("Sure, here is") == true })
        #expect(Set(c.train.compactMap(\.task)) == Set(SkillTasks.families))
    }

    /// More copy words widen what training copies, never what validation asks: the
    /// validation split is unchanged and no held-out word reaches training.
    @Test func moreCopyWordsLeaveValidationAlone() throws {
        var p = CorpusBuilder.Parameters(source: Self.dataDirectory)
        p.seed = 7
        p.harmlessTrain = 200; p.harmlessValidation = 50; p.skillTrain = 700; p.skillValidation = 140
        p.copyWords = 400
        let narrow = try CorpusBuilder(p).build()
        p.copyWords = 2000
        let wide = try CorpusBuilder(p).build()
        #expect(wide.validation == narrow.validation)
        func copied(_ records: [CorpusRecord]) -> Set<String> {
            Set(records.filter { ["repeat", "first", "last"].contains($0.task ?? "") }.compactMap(\.answer))
        }
        #expect(copied(wide.train).count > copied(narrow.train).count)
        #expect(!copied(wide.train).isSubset(of: copied(narrow.train)))
        #expect(copied(wide.train).isDisjoint(with: copied(wide.validation)))
    }

    /// Copying tasks put the word after a space in the prompt and in the answer, so both
    /// carry the same space-prefixed token, and the answer sentence ends with it.
    @Test func copyingTasksAskAndAnswerWithTheSameSpacedWord() throws {
        let c = try Self.small()
        for r in c.train + c.validation where ["repeat", "first", "last"].contains(r.task ?? "") {
            let answer = try #require(r.answer)
            #expect(r.prompt.contains(" \(answer)"), "\(r.prompt)")
            #expect(!r.prompt.contains("\""), "\(r.prompt)")
            #expect(r.completion.hasSuffix(" \(answer)."), "\(r.completion)")
        }
    }

    /// Anchors are the base's own training prompts, half of each label, never a held-out one,
    /// and the trainer reads them as labelled prompts without answers.
    @Test func anchorsAreLabelledTrainingPromptsWithoutAnswers() throws {
        let c = try Self.small()
        let train = Dictionary(c.train.map { ($0.prompt, $0.label) }, uniquingKeysWith: { a, _ in a })
        #expect(c.anchors.count == 400 && Set(c.anchors.map(\.prompt)).count == 400)
        #expect(c.anchors.filter { $0.label == "malicious" }.count == 200)
        #expect(c.anchors.allSatisfy { train[$0.prompt] == $0.label }, "every anchor is a training prompt with its label")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("anchors-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        try CorpusBuilder(CorpusBuilder.Parameters(source: Self.dataDirectory)).write(c, to: out)
        let examples = try JSONLReader().read(url: out.appendingPathComponent("anchors.jsonl")).examples
        #expect(examples.count == 400 && examples.allSatisfy { $0.segments.count == 1 && !$0.segments[0].trainable && $0.label != nil })
    }

    @Test func csvQuotedFields() {
        #expect(CorpusBuilder.csvFields("a,\"b, \"\"c\"\"\"") == ["a", "b, \"c\""])
    }
}

extension CorpusBuilderTests {
    /// The committed corpus (data/corpus) is exactly what `safetune corpus build` makes.
    @Test func committedCorpusIsReproducible() throws {
        let builder = CorpusBuilder(CorpusBuilder.Parameters(source: Self.dataDirectory))
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("corpus-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        try builder.write(try builder.build(), to: out)
        for name in CorpusBuilder.fileNames {
            let committed = try Data(contentsOf: Self.dataDirectory.appendingPathComponent("corpus/\(name)"))
            #expect(try Data(contentsOf: out.appendingPathComponent(name)) == committed, "data/corpus/\(name) differs from the builder's output")
        }
    }
}

extension CorpusBuilderTests {
    /// The shipped model was trained on the committed corpus: it carries the committed
    /// tokenizer (plus the signal's CLS token), its unit map and signal head, and fits the
    /// 30 MB budget. A corpus rebuilt without retraining the model fails here.
    @Test func shippedModelMatchesTheCommittedCorpus() throws {
        let url = Self.dataDirectory.deletingLastPathComponent().appendingPathComponent("checkpoints/base.h5")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        #expect(size <= 30_000_000)
        let checkpoint = try Checkpoint.read(from: url)
        #expect(checkpoint.units != nil && checkpoint.signal != nil)
        // Its guard threshold was calibrated (scripts/build-base-model).
        #expect(checkpoint.signal?.attributes["guard_threshold"]?.doubleValue != nil)
        func model(_ data: Data) throws -> [String: Any] {
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            return try #require(json["model"] as? [String: Any])
        }
        let shipped = try model(try #require(checkpoint.tokenizerJSON))
        let committed = try model(try Data(contentsOf: Self.dataDirectory.appendingPathComponent("corpus/tokenizer.json")))
        #expect(shipped["vocab"] as? [String: Int] == committed["vocab"] as? [String: Int])
        #expect((shipped["merges"] as? NSArray) == (committed["merges"] as? NSArray))
    }
}
