import Engine

/// Something attached to a `Linear` layer whose output is added to the layer's own:
/// `y = x · Wᵀ + b + adapter(x)`. This is the single extension point for parameter-efficient
/// fine-tuning (LoRA attaches here), so every projection in every model gains it at once.
///
/// An adapter owns its own parameters; the base weight it sits on is typically frozen.
public protocol LinearAdapter: AnyObject {
    /// The adapter's contribution for input `x` `[..., in]`; must have shape `[..., out]`.
    func forward(tape: Tape, x: Variable) -> Variable
    /// The adapter's trainable parameters, named relative to the layer it is attached to
    /// (for example `lora_A.weight`).
    var namedParameters: [(String, Variable)] { get }
    /// The adapter as a low-rank branch the projection fuses into its own product (one
    /// output, no separate sum); nil makes the projection add `forward`'s output instead.
    func lowRankUpdate(tape: Tape, x: Variable) -> LowRankUpdate?
}

extension LinearAdapter {
    /// Adapters are added, not fused, unless they say otherwise.
    public func lowRankUpdate(tape: Tape, x: Variable) -> LowRankUpdate? { nil }
}

/// A fully connected projection, used for every projection in every model (attention
/// q/k/v/o or fused `c_attn`, MLP projections, the LM head).
///
/// Buffers: `weight` `[out, in]` (PyTorch `nn.Linear` layout; GPT-2 Conv1D weights are
/// transposed into it once at load), `bias` `[out]` when present.
/// Forward: x `[..., in]` → `[..., out]`.
public final class Linear {
    /// `[out, in]`.
    public let weight: Variable
    /// `[out]`, or nil for bias-free projections (Llama).
    public let bias: Variable?
    /// Hugging Face module path (for example `model.layers.0.self_attn.q_proj`), the name
    /// adapters are targeted by.
    public let path: String
    /// Whether the Hugging Face file stores this weight as `[in, out]` (GPT-2 Conv1D).
    public let storedTransposed: Bool
    /// Optional adapter whose output is added to the projection's (LoRA).
    public var adapter: (any LinearAdapter)?
    /// Called with the input value `[..., in]` on every forward, before the projection runs.
    /// Lets analyses read the activations feeding a projection (SSAH unit scores use the
    /// input of `down_proj` / `o_proj`) without a second model implementation. The tensor is
    /// tape-owned: read it inside the call, do not keep it.
    public var inputObserver: ((Tensor) -> Void)?

    /// A projection over existing parameters.
    public init(path: String, weight: Variable, bias: Variable?, storedTransposed: Bool = false) {
        self.path = path
        self.weight = weight
        self.bias = bias
        self.storedTransposed = storedTransposed
    }

    /// Input features.
    public var inFeatures: Int { weight.shape[1] }
    /// Output features.
    public var outFeatures: Int { weight.shape[0] }

    /// x `[..., in]` → `[..., out]` = x · Wᵀ + b (+ adapter(x)).
    public func forward(tape: Tape, _ x: Variable) -> Variable {
        inputObserver?(x.value)
        if let update = adapter?.lowRankUpdate(tape: tape, x: x) {
            return tape.linear(x, weight, bias: bias, lowRank: update)
        }
        let y = tape.linear(x, weight, bias: bias)
        guard let adapter else { return y }
        return tape.add(y, adapter.forward(tape: tape, x: x))
    }
}
