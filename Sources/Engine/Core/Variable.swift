/// A tensor taking part in reverse-mode differentiation: a value and, when it
/// requires one, a gradient of the same shape.
///
/// Parameters are variables with `requiresGrad == true`; frozen weights and inputs
/// have `requiresGrad == false` and never get a gradient buffer, so ops skip their
/// weight-gradient work entirely.
public final class Variable {
    /// The forward value.
    public var value: Tensor
    /// Accumulated gradient; `nil` until an op first writes one (or one is assigned,
    /// e.g. a view into a gradient arena).
    public var grad: Tensor?
    /// Whether gradients flow into this variable.
    public let requiresGrad: Bool
    /// A name for error messages and checkpoints (Hugging Face parameter names for weights).
    public var name: String
    /// Which elements an optimizer may change: 1 = trainable, 0 = frozen (no step, no
    /// weight decay, moments untouched). `nil` lets every element change. Same shape as
    /// `value`; this is how a safety mask keeps chosen units bit-identical.
    public var updateMask: Tensor?
    /// A frozen weight's values in fewer bits, which projections read instead of `value`
    /// (LoRA training with a packed base: `PackedMatrix`); nil for every other variable.
    /// Whoever changes `value` drops it.
    public var packed: PackedMatrix?
    /// The tape that made this variable, if any: its gradient buffer then comes from the
    /// tape's pool, so intermediate gradients are recycled by `reset()` like activations.
    weak var pool: Tape?

    /// Wraps `value`; `requiresGrad` marks trainable parameters.
    public init(_ value: Tensor, requiresGrad: Bool = false, name: String = "") {
        self.value = value
        self.requiresGrad = requiresGrad
        self.name = name
    }

    /// Shape of `value`.
    public var shape: [Int] { value.shape }

    /// The update mask, created all-ones on first use: pinning elements zeroes theirs.
    public func maskForUpdates() -> Tensor {
        if let m = updateMask { return m }
        let m = Tensor(repeating: 1, shape: value.shape)
        updateMask = m
        return m
    }

    /// The gradient buffer, created zeroed on first use. Ops accumulate into it
    /// (BLAS `beta = 1`), which is what makes a variable used twice, and gradient
    /// accumulation across micro-batches, correct.
    public func gradBuffer() -> Tensor {
        if let g = grad { return g }
        let g = pool?.allocate(value.shape) ?? Tensor(zeros: value.shape)
        grad = g
        return g
    }

    /// The gradient buffer for an op about to write every element of it. `accumulate` is
    /// true when earlier gradients are there to add to, false when the buffer was just
    /// made: its contents are then undefined and the op must overwrite them (this skips
    /// zero-filling the large activation gradients).
    public func gradBufferForWriting() -> (buffer: Tensor, accumulate: Bool) {
        if let g = grad { return (g, true) }
        let g = pool?.allocate(value.shape, zeroed: false) ?? Tensor(zeros: value.shape)
        grad = g
        return (g, false)
    }

    /// Sets the gradient to zero, keeping its buffer.
    public func zeroGrad() {
        grad?.fill(0)
    }
}
