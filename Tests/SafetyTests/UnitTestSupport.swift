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

/// A minimal LoRA adapter (`ΔW = scale · B · A`) implementing the row/column freezing contract,
/// so masks can be tested against adapters independently of the model library's own.
final class TestLoRA: UnitFreezableAdapter {
    let a: Variable
    let b: Variable
    let scale: Float

    init(path: String, inFeatures: Int, outFeatures: Int, rank: Int, scale: Float, rng: inout SeededRandom) {
        let at = Tensor(zeros: [rank, inFeatures]), bt = Tensor(zeros: [outFeatures, rank])
        rng.fillNormal(at, std: 0.3)
        // Nonzero B, so a frozen row must be pinned by the freeze, not by initialisation.
        rng.fillNormal(bt, std: 0.3)
        a = Variable(at, requiresGrad: true, name: path + ".lora_A.weight")
        b = Variable(bt, requiresGrad: true, name: path + ".lora_B.weight")
        self.scale = scale
    }

    func forward(tape: Tape, x: Variable) -> Variable {
        tape.scale(tape.linear(tape.linear(x, a, bias: nil), b, bias: nil), scale)
    }

    var namedParameters: [(String, Variable)] { [("lora_A.weight", a), ("lora_B.weight", b)] }

    func freezeOutputs(_ rows: [Int]) {
        let r = b.shape[1]
        let mask = b.updateMask ?? Tensor(repeating: 1, shape: b.shape)
        for row in rows {
            for k in 0..<r { b.value.data[row * r + k] = 0; mask.data[row * r + k] = 0 }
        }
        b.updateMask = mask
    }

    func freezeInputs(_ columns: [Int]) {
        let (r, n) = (a.shape[0], a.shape[1])
        let mask = a.updateMask ?? Tensor(repeating: 1, shape: a.shape)
        for k in 0..<r {
            for c in columns { a.value.data[k * n + c] = 0; mask.data[k * n + c] = 0 }
        }
        a.updateMask = mask
    }

    /// `W + scale · B · A` for base weight `w` `[out, in]`, in Float as the forward computes it.
    func effective(_ w: Tensor) -> [Float] {
        let (out, n, r) = (w.shape[0], w.shape[1], a.shape[0])
        var result = w.scalars
        for i in 0..<out {
            for j in 0..<n {
                var d: Float = 0
                for k in 0..<r { d += b.value.data[i * r + k] * a.value.data[k * n + j] }
                result[i * n + j] += scale * d
            }
        }
        return result
    }
}
