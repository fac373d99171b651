import Foundation
import Models
import Testing

/// Hostile numbers in a Hugging Face `config.json` give `ModelConfigError`, never an
/// arithmetic trap (found by fuzzing the config parser).
@Suite struct ConfigBoundsTests {
    static func parse(_ json: [String: Any]) throws(ModelConfigError) -> ModelConfig {
        try ModelConfig.huggingFace(json: json, file: "config.json")
    }

    static var gpt2: [String: Any] { ["model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 8] }
    static var llama: [String: Any] {
        ["model_type": "llama", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
         "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 8]
    }

    @Test(arguments: [Int.max, Int.max / 4 + 1, Int.min, -1])
    func gpt2HugeWidthWithoutInnerSize(_ width: Int) {
        var json = Self.gpt2
        json["n_embd"] = width
        #expect(throws: ModelConfigError.invalid(key: "hidden_size", reason: "\(width) is outside 1...16384")) { try Self.parse(json) }
    }

    @Test(arguments: [Int.max, Int.max / 2 + 1, Int.min, 1 << 62])
    func llamaHeadDimOverflow(_ headDim: Int) {
        var json = Self.llama
        json["head_dim"] = headDim
        #expect(throws: ModelConfigError.self) { try Self.parse(json) }
    }

    @Test func validConfigsStillParse() throws {
        #expect(try Self.parse(Self.gpt2).intermediateSize == 32)
        var json = Self.llama
        json["head_dim"] = 4
        #expect(try Self.parse(json).headDim == 4)
    }

    /// Found by `safetune-fuzz --target config --seed 7001` (input 83,530): a `model_type`
    /// holding a line break split the error's description over two lines.
    @Test func quotedValuesStayOnOneLine() {
        var json = Self.llama
        json["model_type"] = "qwen2\u{2028}x\n"
        do {
            _ = try Self.parse(json)
            Issue.record("accepted an unknown model_type")
        } catch {
            #expect(!error.description.contains { $0.isNewline }, "\(error.description)")
        }
    }
}
