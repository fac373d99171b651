import Engine

/// Multi-head causal self-attention, in both families' forms.
///
/// GPT-2: one fused projection `c_attn` `[3d, d]` whose output is split into q, k, v
/// (`d` each), learned positions elsewhere, output projection `c_proj`.
/// Llama family: separate `q_proj` `[H·D, d]`, `k_proj`/`v_proj` `[KV·D, d]` (grouped-query
/// attention when KV < H, optional q/k/v bias as in Qwen2), rotary embeddings on q and k,
/// output projection `o_proj`.
///
/// Forward: x `[B, T, d]` → `[B, T, d]`. With a KV cache the new keys and values are
/// appended and the queries attend to the cached positions.
public final class Attention {
    /// How queries, keys and values are projected.
    public enum Projections {
        /// GPT-2 `c_attn`: one projection to `[q | k | v]`.
        case fused(Linear)
        /// Llama family: one projection each.
        case separate(q: Linear, k: Linear, v: Linear)
    }

    /// The q/k/v projections.
    public let projections: Projections
    /// The output projection (`c_proj` / `o_proj`).
    public let output: Linear
    /// Query heads.
    public let heads: Int
    /// Key/value heads (divides `heads`).
    public let kvHeads: Int
    /// Size of one head.
    public let headDim: Int
    /// Rotary base; nil for learned absolute positions (GPT-2).
    public let ropeTheta: Float?

    /// An attention layer over existing projections.
    public init(projections: Projections, output: Linear, heads: Int, kvHeads: Int, headDim: Int, ropeTheta: Float?) {
        self.projections = projections
        self.output = output
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.ropeTheta = ropeTheta
    }

    /// Every projection of this layer, for adapters and parameter listings.
    public var linears: [Linear] {
        switch projections {
        case let .fused(l): return [l, output]
        case let .separate(q, k, v): return [q, k, v, output]
        }
    }

    /// x `[B, T, d]` → `[B, T, d]`.
    ///
    /// - positions: B·T absolute positions (row-major), used by rotary embeddings.
    /// - mask: replaces the causal rule when given (`[B, T, Tk]`, Tk = cached + T).
    /// - cache: layer `layer` of a cache; the new keys/values are written after the stored
    ///   positions (the caller advances the cache once every layer has run).
    ///   Gradients do not flow through cached keys, so use it inside `withoutGrad`.
    public func forward(tape: Tape, _ x: Variable, positions: [Int32], mask: AttentionMask?,
                        cache: (any KeyValueStore)? = nil, layer: Int = 0) -> Variable {
        var q: Variable, k: Variable, v: Variable
        switch projections {
        case let .fused(qkv):
            let parts = tape.split(qkv.forward(tape: tape, x), sizes: [heads * headDim, kvHeads * headDim, kvHeads * headDim])
            (q, k, v) = (parts[0], parts[1], parts[2])
        case let .separate(qp, kp, vp):
            (q, k, v) = (qp.forward(tape: tape, x), kp.forward(tape: tape, x), vp.forward(tape: tape, x))
        }
        if let ropeTheta {
            q = tape.rope(q, heads: heads, positions: positions, theta: ropeTheta)
            k = tape.rope(k, heads: kvHeads, positions: positions, theta: ropeTheta)
        }
        var keyBatch: [Int]?
        if let cache {
            let all = cache.store(layer: layer, keys: k.value, values: v.value)
            (k, v, keyBatch) = (Variable(all.keys), Variable(all.values), all.keyBatch)
        }
        let y = tape.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, mask: mask, keyBatch: keyBatch)
        return output.forward(tape: tape, y)
    }
}
