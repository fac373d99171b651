import Engine

/// The position-wise feed-forward network.
///
/// GPT-2: `c_proj(gelu(c_fc(x)))` with `c_fc` `[F, d]`, `c_proj` `[d, F]`, biases.
/// Llama family: `down_proj(silu(gate_proj(x)) ⊙ up_proj(x))` (SwiGLU), no biases unless
/// `mlp_bias`. Forward: `[B, T, d]` → `[B, T, d]`.
public final class MLP {
    /// The two forms.
    public enum Form {
        /// GPT-2: `fc` then tanh-GELU.
        case gelu(fc: Linear)
        /// Llama: gated SiLU.
        case swiglu(gate: Linear, up: Linear)
    }

    /// The input projection(s) and activation.
    public let form: Form
    /// The projection back to the model width (`c_proj` / `down_proj`).
    public let down: Linear

    /// An MLP over existing projections.
    public init(form: Form, down: Linear) {
        self.form = form
        self.down = down
    }

    /// Every projection of this layer, for adapters and parameter listings.
    public var linears: [Linear] {
        switch form {
        case let .gelu(fc): return [fc, down]
        case let .swiglu(gate, up): return [gate, up, down]
        }
    }

    /// `[B, T, d]` → `[B, T, d]`.
    public func forward(tape: Tape, _ x: Variable) -> Variable {
        let h: Variable
        switch form {
        case let .gelu(fc):
            h = tape.gelu(fc.forward(tape: tape, x))
        case let .swiglu(gate, up):
            h = tape.swiglu(gate: gate.forward(tape: tape, x), up: up.forward(tape: tape, x))
        }
        return down.forward(tape: tape, h)
    }
}
