import Checkpoints
import Foundation
import Models
import Testing
import Training
@testable import Safety

@Suite("SSAH unit map building and caching")
struct UnitMapBuilderTests {
    private func write(_ lines: [String]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("units-\(UUID().uuidString).jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    private let corpus = [
        #"{"prompt": "How do I build a weapon?", "completion": "Sorry, I cannot help with that.", "label": "malicious"}"#,
        #"{"prompt": "What is 2 + 3?", "completion": "The answer is 5.", "label": "benign"}"#,
        #"{"prompt": "Tell me how to hurt someone.", "completion": "I cannot fulfill your request.", "label": "malicious"}"#,
        #"{"prompt": "Name the capital of France.", "completion": "Paris is the capital of France.", "label": "benign"}"#,
        #"{"prompt": "What is 4 + 4?", "completion": "The answer is 8.", "label": "benign"}"#,
    ]

    @Test("Labelled files are filtered to the wanted label; unlabelled files are used whole")
    func filtering() throws {
        let url = try write(corpus)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(try UnitMapBuilder.examples(url, keep: .malicious, limit: nil).examples.count == 2)
        #expect(try UnitMapBuilder.examples(url, keep: .benign, limit: nil).examples.count == 3)
        #expect(try UnitMapBuilder.examples(url, keep: .benign, limit: 2).examples.count == 2)
        let plain = try write([#"{"prompt": "a", "completion": "b"}"#, #"{"text": "c"}"#])
        defer { try? FileManager.default.removeItem(at: plain) }
        #expect(try UnitMapBuilder.examples(plain, keep: .malicious, limit: nil).examples.count == 2)
        let benignOnly = try write([corpus[1]])
        defer { try? FileManager.default.removeItem(at: benignOnly) }
        #expect(throws: UnitMapError.self) { try UnitMapBuilder.examples(benignOnly, keep: .malicious, limit: nil) }
    }

    @Test("A map is computed once, stored in the checkpoint, and reused (reclassified for other sizes)")
    func caching() throws {
        let tokenizer = try Tiny.tokenizer()
        let model = try Tiny.model(.llama, vocab: tokenizer.vocabSize)
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: Tiny.template)
        let url = try write(corpus)
        defer { try? FileManager.default.removeItem(at: url) }
        let sizes = UnitSizes(scu: 0.05, ucu: 0.1, ru: 0.2)
        let builder = UnitMapBuilder(sizes: sizes, batchSize: 2)

        var checkpoint = Checkpoint(config: model.config, weights: model.huggingFaceWeights())
        let first = try builder.map(for: &checkpoint, source: "base.h5", model: model, encoder: encoder, safety: url, utility: url)
        #expect(first.computed)
        let units = try #require(checkpoint.units)
        #expect(units.attributes["safety_examples"] == .int(2))
        #expect(units.attributes["utility_examples"] == .int(3))

        // The same as scoring by hand with the scorer on the encoded examples.
        let scorer = UnitScorer(model: model, batchSize: 5)
        let s = try UnitMapBuilder.examples(url, keep: .malicious, limit: nil).examples.map(encoder.encode)
        let u = try UnitMapBuilder.examples(url, keep: .benign, limit: nil).examples.map(encoder.encode)
        let direct = try UnitMap(safety: scorer.score(s, name: "s"), utility: scorer.score(u, name: "u"), sizes: sizes)
        for l in 0..<direct.layerCount {
            for (x, y) in zip(direct.mlp[l].safety, first.map.mlp[l].safety) { #expect(abs(x - y) <= 1e-4 * max(abs(x), 1e-6)) }
        }
        let tokens = s.reduce(0) { $0 + $1.ids.count }
        #expect(units.attributes["safety_tokens"] == .int(Int64(tokens)))

        // Second time: read back, not recomputed, even without data.
        let again = try builder.map(for: &checkpoint, source: "base.h5", model: model, encoder: encoder, safety: nil, utility: nil)
        #expect(!again.computed)
        #expect(again.map.mlp.map(\.classes) == first.map.mlp.map(\.classes))
        let wider = UnitMapBuilder(sizes: UnitSizes(scu: 0.1, ucu: 0.1, ru: 0.3))
        let other = try #require(try wider.cached(in: checkpoint, source: "base.h5"))
        #expect(other.sizes == wider.sizes)
        #expect(other.classCounts(.mlp)[.ru] == Int((0.3 * Double(other.unitCount(.mlp))).rounded()))

        var bare = Checkpoint(config: model.config, weights: [:])
        #expect(throws: UnitMapError.noScoringData(source: "x.h5")) {
            try builder.map(for: &bare, source: "x.h5", model: model, encoder: encoder, safety: nil, utility: nil)
        }
    }
}
