import Engine

/// One pre-norm transformer block, shared by both families:
/// `h = x + attn(norm1(x))`, `out = h + mlp(norm2(h))`.
///
/// Norms are `ln_1`/`ln_2` (GPT-2) or `input_layernorm`/`post_attention_layernorm` (Llama).
/// Forward: `[B, T, d]` → `[B, T, d]`.
public final class Block {
    /// Before attention.
    public let attentionNorm: Norm
    /// Self-attention.
    public let attention: Attention
    /// Before the MLP.
    public let mlpNorm: Norm
    /// Feed-forward network.
    public let mlp: MLP

    /// A block over existing layers.
    public init(attentionNorm: Norm, attention: Attention, mlpNorm: Norm, mlp: MLP) {
        self.attentionNorm = attentionNorm
        self.attention = attention
        self.mlpNorm = mlpNorm
        self.mlp = mlp
    }

    /// `[B, T, d]` → `[B, T, d]`; see `Attention.forward` for positions, mask and cache.
    public func forward(tape: Tape, _ x: Variable, positions: [Int32], mask: AttentionMask?,
                        cache: (any KeyValueStore)? = nil, layer: Int = 0) -> Variable {
        let a = attention.forward(tape: tape, attentionNorm.forward(tape: tape, x), positions: positions,
                                  mask: mask, cache: cache, layer: layer)
        let h = tape.add(x, a)
        return tape.add(h, mlp.forward(tape: tape, mlpNorm.forward(tape: tape, h)))
    }
}
