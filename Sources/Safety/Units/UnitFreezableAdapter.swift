import Models

/// An adapter whose contribution can be pinned per output row and per input column of the
/// projection it sits on, so that SSAH-frozen units keep bit-identical effective weights.
///
/// LoRA (`ΔW = scale · B · A`): freezing output rows zeroes those rows of B and masks them
/// (`Variable.updateMask`), freezing input columns does the same to columns of A; the
/// product then stays exactly zero on those rows and columns however the rest trains.
public protocol UnitFreezableAdapter: LinearAdapter {
    /// Keeps the adapter's contribution to these output features fixed (at zero for LoRA).
    func freezeOutputs(_ rows: [Int])
    /// Keeps the adapter's contribution from these input features fixed (at zero for LoRA).
    func freezeInputs(_ columns: [Int])
}
