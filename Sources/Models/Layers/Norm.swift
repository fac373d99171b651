import Engine

/// Normalisation over the last dimension: LayerNorm (GPT-2: weight and bias) or RMSNorm
/// (Llama family: `x · rsqrt(mean(x²) + eps) · weight`, no bias).
///
/// Buffers: `weight` `[d]`, `bias` `[d]` for LayerNorm. Forward: `[..., d]` → `[..., d]`.
public final class Norm {
    /// Which normalisation.
    public enum Kind: Sendable {
        /// Mean and variance, affine weight and bias.
        case layer
        /// Root mean square, weight only.
        case rms
    }

    /// The normalisation this layer applies.
    public let kind: Kind
    /// `[d]`.
    public let weight: Variable
    /// `[d]` for LayerNorm, nil for RMSNorm.
    public let bias: Variable?
    /// Added to the variance (or mean square) for stability.
    public let eps: Float

    /// A norm over existing parameters; LayerNorm needs a bias.
    public init(kind: Kind, weight: Variable, bias: Variable?, eps: Float) {
        self.kind = kind
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    /// `[..., d]` → `[..., d]`.
    public func forward(tape: Tape, _ x: Variable) -> Variable {
        if kind == .layer, let bias {
            return tape.layerNorm(x, weight: weight, bias: bias, eps: eps)
        }
        return tape.rmsNorm(x, weight: weight, eps: eps)
    }
}
