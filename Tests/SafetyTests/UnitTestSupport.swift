import Engine
import Models
@testable import Safety

/// Tiny models and helpers shared by the SSAH unit tests.
enum UnitFixtures {
    static let gpt2 = ModelConfig(family: .gpt2, vocabSize: 50, hiddenSize: 16, numLayers: 2, numHeads: 4,
                                  intermediateSize: 24, maxPositions: 32)
    static let llama = ModelConfig(family: .llama, vocabSize: 50, hiddenSize: 16, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                   intermediateSize: 20, maxPositions: 32)

    /// Deterministic token sequences of varied lengths.
    static func sequences(count: Int, seed: UInt64, vocab: Int = 50) -> [[Int32]] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { i in
            (0..<(5 + (i * 3) % 9)).map { _ in Int32(rng.next() % UInt64(vocab)) }
        }
    }

    /// A map over `config` from synthetic scores (both kinds), classified with `sizes`.
    static func map(for config: ModelConfig, seed: UInt64, sizes: UnitSizes = UnitSizes(scu: 0.1, ucu: 0.2, ru: 0.25)) throws -> UnitMap {
        var rng = SeededRandom(seed: seed)
        func scores() -> UnitScores {
            UnitScores(mlp: (0..<config.numLayers).map { _ in (0..<config.intermediateSize).map { _ in Double(rng.uniform()) + 0.01 } },
                       attn: (0..<config.numLayers).map { _ in (0..<config.numHeads).map { _ in Double(rng.uniform()) + 0.01 } },
                       tokens: 1)
        }
        return try UnitMap(safety: scores(), utility: scores(), sizes: sizes)
    }

    /// Copies of every parameter value, by name.
    static func snapshot(_ model: TransformerModel) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.0, $0.1.value.scalars) })
    }
}
