import Engine
import Models
import Safety
import Tokenizers

/// Tiny tokenizer and models shared by the Safety tests (random weights, fast).
enum Tiny {
    static let texts = [
        String(repeating: "Sure, here is how to do it. Sorry, I cannot fulfill your request because it is harmful. ", count: 4),
        String(repeating: "### Instruction:\nWhat is 2 + 3?\n\n### Response:\nThe answer is 5. Paris is the capital of France. ", count: 4),
    ]

    /// A byte-level BPE tokenizer with `<|endoftext|>` as id 0.
    static func tokenizer() throws -> Tokenizer {
        try BPETrainer(vocabSize: 300, minFrequency: 2, specialTokens: ["<|endoftext|>"]).trainTokenizer(texts: texts)
    }

    static func config(_ family: ModelConfig.Family = .gpt2, vocab: Int) -> ModelConfig {
        switch family {
        case .gpt2:
            return ModelConfig(family: .gpt2, vocabSize: vocab, hiddenSize: 16, numLayers: 2, numHeads: 4, maxPositions: 160)
        case .llama:
            return ModelConfig(family: .llama, vocabSize: vocab, hiddenSize: 16, numLayers: 2, numHeads: 4, numKVHeads: 2,
                               intermediateSize: 24, maxPositions: 160, normEps: 1e-6, ropeTheta: 10_000)
        }
    }

    static func model(_ family: ModelConfig.Family = .gpt2, vocab: Int, seed: UInt64 = 7) throws -> TransformerModel {
        try TransformerModel(config: config(family, vocab: vocab), seed: seed)
    }

    static let template = ChatTemplate(style: .instruction, endOfTurn: "<|endoftext|>")
}
