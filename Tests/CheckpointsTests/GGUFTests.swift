import Engine
import Foundation
import Models
import Testing
import Tokenizers
@testable import Checkpoints

/// Fixtures made by `scripts/reference/make_gguf_fixtures.py` (gguf-py and transformers).
private enum GGUFFixtures {
    static func url(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent("gguf/\(name)")
    }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(name))) }

    static func floats(_ name: String) throws -> [Float] {
        try bytes(name).withUnsafeBytes { raw in (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    static func json(_ name: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url(name))) as? [String: Any])
    }
}

/// Checks each reference conversation (`messages`, `add_generation_prompt`) renders to the
/// reference's `apply_chat_template` text and ids.
func expectRenders(_ conversations: [String: [String: Any]], template: ChatTemplate, tokenizer: Tokenizer) throws {
    for (name, c) in conversations {
        let messages = try #require(c["messages"] as? [[String: String]]).map {
            ChatMessage(role: ChatMessage.Role(rawValue: $0["role"]!)!, content: $0["content"]!)
        }
        let text = template.render(messages, addGenerationPrompt: c["add_generation_prompt"] as? Bool ?? false)
        #expect(text == c["text"] as? String, "\(name)")
        #expect(tokenizer.encode(text) == c["ids"] as? [Int], "\(name)")
    }
}

@Suite("GGUF dequantisation equals gguf-py bit for bit")
struct GGMLTypeTests {
    @Test(arguments: [GGMLType.f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q6_K])
    func dequantize(type: GGMLType) throws {
        let raw = try GGUFFixtures.bytes("quant/\(type.name).bin")
        let expected = try GGUFFixtures.floats("quant/\(type.name).f32")
        #expect(raw.count / type.blockBytes * type.blockValues == expected.count)
        var out = [Float](repeating: .nan, count: expected.count)
        raw.withUnsafeBytes { type.dequantize($0.baseAddress!, count: expected.count, into: &out) }
        for i in 0..<expected.count where out[i].bitPattern != expected[i].bitPattern {
            Issue.record("\(type.name) element \(i): \(out[i]) != \(expected[i])")
            return
        }
    }

    @Test(arguments: [GGMLType.q8_0, .f16])
    func quantize(type: GGMLType) throws {
        let input = try GGUFFixtures.floats("quant/\(type.name)_quantize.f32")
        let expected = try GGUFFixtures.bytes("quant/\(type.name)_quantize.bin")
        var out = [UInt8](repeating: 0, count: try #require(type.byteCount(values: input.count)))
        out.withUnsafeMutableBytes { type.quantize(input, count: input.count, into: $0.baseAddress!) }
        #expect(out == expected)
    }

    @Test func blockSizesRejectPartialBlocks() {
        #expect(GGMLType.q4_K.byteCount(values: 512) == 288)
        #expect(GGMLType.q4_K.byteCount(values: 576) == nil)
        #expect(GGMLType.q8_0.byteCount(values: 64) == 68)
    }
}

@Suite("A tiny GGUF model imports as transformers loads it")
struct GGUFTinyModelTests {
    static let imported = Result { try GGUFModel.importModel(from: GGUFFixtures.url("tiny/tiny.gguf")) }

    @Test func configurationFromMetadata() throws {
        let c = try Self.imported.get().config
        #expect(c == ModelConfig(family: .llama, vocabSize: 480, hiddenSize: 64, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                 intermediateSize: 128, maxPositions: 128, normEps: 1e-5, ropeTheta: 10_000,
                                 tieWordEmbeddings: true, qkvBias: false, outputBias: false, mlpBias: false, bosTokenId: 1, eosTokenId: 2))
    }

    @Test func provenanceNamesTheFile() throws {
        let expected = try GGUFFixtures.json("tiny/expected.json")
        let source = try #require(try Self.imported.get().provenance?.source)
        #expect(source.file == "tiny.gguf")
        #expect(source.sha256 == expected["sha256"] as? String)
        #expect(source.package == nil)
    }

    /// Texts: ids as llama.cpp's `smollm` pre-tokenizer gives them (what the fixture calls
    /// `ids_llama_cpp_smollm`), which are transformers' ids wherever the two agree.
    @Test func logitsAndTokensMatchTransformers() throws {
        let checkpoint = try Self.imported.get()
        let tokenizer = try #require(try checkpoint.tokenizer(source: "tiny.gguf"))
        let model = try TransformerModel(config: checkpoint.config, weights: checkpoint.weights)
        let texts = try #require(try GGUFFixtures.json("tiny/expected.json")["texts"] as? [[String: Any]])
        for entry in texts {
            let text = try #require(entry["text"] as? String)
            let ids = try #require(entry["ids"] as? [Int])
            #expect(tokenizer.encode(text) == entry["ids_llama_cpp_smollm"] as? [Int], "\(text)")
            let expected = try #require(entry["logits"] as? [[Double]])
            let tape = Tape()
            let logits = tape.withoutGrad {
                model.forward(tape: tape, ids: ids.map(Int32.init), batch: 1, length: ids.count).value
            }
            var worst: Double = 0
            for (t, row) in expected.enumerated() {
                for (j, v) in row.enumerated() { worst = max(worst, abs(Double(logits.data[t * 480 + j]) - v)) }
            }
            #expect(worst < 1e-4, "\(text): max logit difference \(worst)")
        }
    }

    @Test func chatTemplateRendersAsApplyChatTemplate() throws {
        let checkpoint = try Self.imported.get()
        let tokenizer = try #require(try checkpoint.tokenizer(source: "tiny.gguf"))
        let template = try ChatTemplate.named("auto", tokenizer: tokenizer)
        #expect(template.style == .chatml)
        #expect(template.defaultSystem == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        try expectRenders(try #require(try GGUFFixtures.json("tiny/expected.json")["chat_template"] as? [String: [String: Any]]),
                          template: template, tokenizer: tokenizer)
    }

    @Test func greedyContinuationMatches() throws {
        let checkpoint = try Self.imported.get()
        let model = try TransformerModel(config: checkpoint.config, weights: checkpoint.weights)
        let g = try #require(try GGUFFixtures.json("tiny/expected.json")["generation"] as? [String: Any])
        let prompt = try #require(g["prompt_ids"] as? [Int])
        let result = try Generator(model: model).generate(prompt: prompt, options: GenerationOptions(maxTokens: 16, stopAtEndOfSequence: false))
        #expect(result.tokens == g["new_ids"] as? [Int])
    }

    @Test func exportAndImportRoundTrip() throws {
        let checkpoint = try Self.imported.get()
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("out.gguf")
        try GGUFModel.export(checkpoint, to: url, type: .f32)
        let back = try GGUFModel.importModel(from: url)
        #expect(back.config == checkpoint.config)
        #expect(sameWeights(back.weights, checkpoint.weights))
        #expect(back.tokenizerJSON.map { try? Tokenizer(data: $0, source: "back").encode("Hello 2026 world") }
                == checkpoint.tokenizerJSON.map { try? Tokenizer(data: $0, source: "orig").encode("Hello 2026 world") })
        #expect(back.chatTemplate == checkpoint.chatTemplate)
    }
}

@Suite("A qwen2 model through GGUF")
struct GGUFQwen2Tests {
    /// Qwen2's shape: q/k/v biases, no output or MLP bias; the Qwen2 tokenizer fixture.
    @Test func exportsAndImportsUnpermutedWithTheQwen2PreTokenizer() throws {
        let config = ModelConfig(family: .llama, vocabSize: 481, hiddenSize: 32, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                 intermediateSize: 48, maxPositions: 64, normEps: 1e-6, ropeTheta: 10_000, tieWordEmbeddings: true,
                                 qkvBias: true, outputBias: false, mlpBias: false, eosTokenId: 0)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let tokenizerJSON = try Data(contentsOf: root.appendingPathComponent("TokenizersTests/Fixtures/qwen2.json"))
        let checkpoint = Checkpoint(config: config, weights: randomWeights(config), tokenizerJSON: tokenizerJSON)
        #expect(HuggingFaceModel.modelType(config) == "qwen2")
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("q.gguf")
        try GGUFModel.export(checkpoint, to: url, type: .f32)

        let file = try GGUFFile(contentsOf: url)
        #expect(try file.string("general.architecture") == "qwen2")
        #expect(try file.string("tokenizer.ggml.pre") == "qwen2")
        // qwen2 files keep Hugging Face's q/k row order.
        let q = try #require(file.tensor(named: "blk.0.attn_q.weight"))
        let stored = file.floats(q), original = checkpoint.weights["model.layers.0.self_attn.q_proj.weight"]!
        #expect(Array(UnsafeBufferPointer(start: stored.data, count: stored.count)) == Array(UnsafeBufferPointer(start: original.data, count: original.count)))

        let back = try GGUFModel.importModel(from: url)
        #expect(back.config == config)
        #expect(sameWeights(back.weights, checkpoint.weights))
        let text = "Hello world, it's 2026 and 12345 tokens\n"
        let original2 = try Tokenizer(data: tokenizerJSON, source: "qwen2.json")
        #expect(try #require(try back.tokenizer(source: "q.gguf")).encode(text) == original2.encode(text))
    }
}

@Suite("The q/k row permutation")
struct GGUFPermutationTests {
    @Test func rowOrderInterleavesHalves() {
        let t = Tensor(shape: [8, 3], scalars: (0..<24).map(Float.init))
        let there = GGUFModel.ggufRowOrder(t, heads: 2)
        // Head 0 has rows 0...3: Hugging Face halves (0, 1 | 2, 3) interleave to 0, 2, 1, 3.
        #expect(Array(UnsafeBufferPointer(start: there.data, count: 12)) == [0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11])
        // Every row lands somewhere once.
        #expect(Set((0..<8).map { GGUFModel.huggingFaceRow(ofGGUFRow: $0, rows: 8, heads: 2) }) == Set(0..<8))
    }

    @Test func namesMapBothWays() {
        for name in ["token_embd.weight", "output_norm.weight", "output.weight", "blk.12.attn_q.weight", "blk.0.attn_k.bias", "blk.3.ffn_down.weight"] {
            #expect(GGUFModel.huggingFaceName(name).flatMap(GGUFModel.ggufName) == name)
        }
        #expect(GGUFModel.huggingFaceName("blk.1.attn_q.scale") == nil)
        #expect(GGUFModel.huggingFaceName("blk.01.attn_q.weight") == nil)
    }
}
