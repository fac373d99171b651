import Engine

/// A low-rank adapter (Hu et al., 2021) attached to a `Linear`:
/// `y += (alpha / rank) · B · A · dropout(x)`.
///
/// Buffers: `a` `[rank, in]` (PEFT `lora_A.weight`), initialised uniform in ±1/sqrt(in)
/// as PEFT's Kaiming-uniform default; `b` `[out, rank]` (PEFT `lora_B.weight`), zeros, so a
/// fresh adapter leaves the model unchanged.
///
/// Per-unit masks (SSAH): `freezeOutputs` keeps rows of the effective weight `W + ΔW` exactly
/// as they are (rows of `b` pinned at zero); `freezeInputs` does the same for columns
/// (columns of `a` pinned at zero). Pinned elements carry an `updateMask` of 0, which every
/// optimizer honours, so the protection holds bit for bit through training.
public final class LoRAAdapter: LinearAdapter {
    /// `[rank, in]`.
    public let a: Variable
    /// `[out, rank]`.
    public let b: Variable
    public let rank: Int
    public let alpha: Float
    /// Probability of dropping an input element during training.
    public let dropout: Float
    private var rng: SeededRandom

    /// A fresh adapter for a projection `inFeatures → outFeatures`.
    public init(inFeatures: Int, outFeatures: Int, rank: Int, alpha: Float, dropout: Float = 0, seed: UInt64) {
        precondition(rank > 0, "LoRA rank must be positive")
        rng = SeededRandom(seed: seed)
        let a = Tensor(zeros: [rank, inFeatures])
        let bound = 1 / Float(inFeatures).squareRoot()
        rng.fillUniform(a, -bound, bound)
        self.a = Variable(a, requiresGrad: true, name: "lora_A.weight")
        self.b = Variable(Tensor(zeros: [outFeatures, rank]), requiresGrad: true, name: "lora_B.weight")
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
    }

    /// An adapter with given weights (loaded from a checkpoint or a PEFT file).
    public init(a: Tensor, b: Tensor, alpha: Float, dropout: Float = 0, seed: UInt64 = 0) {
        precondition(a.rank == 2 && b.rank == 2 && a.shape[0] == b.shape[1], "LoRA: A \(a.shape) and B \(b.shape) disagree")
        self.a = Variable(a, requiresGrad: true, name: "lora_A.weight")
        self.b = Variable(b, requiresGrad: true, name: "lora_B.weight")
        rank = a.shape[0]
        self.alpha = alpha
        self.dropout = dropout
        rng = SeededRandom(seed: seed)
    }

    /// Restarts the dropout stream: the trainer reseeds every step so that a resumed run
    /// draws the same masks as an uninterrupted one.
    public func reseedDropout(_ seed: UInt64) {
        rng = SeededRandom(seed: seed)
    }

    /// `alpha / rank`, the factor on `B · A`.
    public var scaling: Float { alpha / Float(rank) }

    /// x `[..., in]` → `[..., out]`: `scaling · (dropout(x) · Aᵀ) · Bᵀ`, as a separate output
    /// (the unfused form; `Linear` fuses the branch through `lowRankUpdate`).
    public func forward(tape: Tape, x: Variable) -> Variable {
        let input = dropout > 0 ? tape.dropout(x, p: dropout, rng: &rng) : x
        return tape.scale(tape.linear(tape.linear(input, a), b), scaling)
    }

    /// The same branch for the projection to fuse into its product (what `Linear` runs).
    public func lowRankUpdate(tape: Tape, x: Variable) -> LowRankUpdate? {
        let input = dropout > 0 ? tape.dropout(x, p: dropout, rng: &rng) : x
        return LowRankUpdate(input: input, a: a, b: b, scale: scaling)
    }

    public var namedParameters: [(String, Variable)] { [("lora_A.weight", a), ("lora_B.weight", b)] }

    /// The weight change `scaling · B · A`, `[out, in]`.
    public func delta() -> Tensor {
        let out = b.shape[0], inF = a.shape[1]
        let d = Tensor(zeros: [out, inF])
        BLAS.gemm(m: out, n: inF, k: rank, alpha: scaling, a: b.value.data, b: a.value.data, c: d.data)
        return d
    }

    /// Pins output rows `rows` of the adapted weight: those rows of `b` become zero and frozen.
    public func freezeOutputs(_ rows: some Sequence<Int>) {
        let mask = b.maskForUpdates()
        for r in rows {
            for j in 0..<rank { b.value.data[r * rank + j] = 0; mask.data[r * rank + j] = 0 }
        }
    }

    /// Pins input columns `columns` of the adapted weight: those columns of `a` become zero and frozen.
    public func freezeInputs(_ columns: some Sequence<Int>) {
        let inF = a.shape[1]
        let mask = a.maskForUpdates()
        for c in columns {
            for i in 0..<rank { a.value.data[i * inF + c] = 0; mask.data[i * inF + c] = 0 }
        }
    }
}
