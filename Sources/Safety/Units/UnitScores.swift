/// Raw SSAH importance `I_j(D) = Var_n(X_B[n, j]) · ‖B[:, j]‖²` of every unit for one dataset,
/// before per-layer normalisation.
public struct UnitScores: Sendable, Equatable {
    /// `mlp[layer][neuron]`.
    public var mlp: [[Double]]
    /// `attn[layer][head]`: the sum of the channel scores over the head's D input channels of `o_proj`.
    public var attn: [[Double]]
    /// Token positions the variances were taken over.
    public var tokens: Int

    /// Scores as given.
    public init(mlp: [[Double]], attn: [[Double]], tokens: Int) {
        self.mlp = mlp
        self.attn = attn
        self.tokens = tokens
    }

    /// The scores of one module of one layer.
    public subscript(layer: Int, module: UnitModule) -> [Double] {
        switch module {
        case .mlp: return mlp[layer]
        case .attn: return attn[layer]
        }
    }

    /// Number of layers.
    public var layerCount: Int { mlp.count }
}
