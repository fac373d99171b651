import Engine
import Models

/// Removes a signature from a model: full weights get the selected MLP channels
/// re-initialised, adapters get the matching entries zeroed.
public enum Neutralizer {
    /// Re-initialises the signature's MLP channels of `model` in place: each selected row of
    /// up/gate (`c_fc`) and column of down (`c_proj`) is redrawn from a normal distribution
    /// with the matrix's own standard deviation (so the scale fits a trained model), and the
    /// rows' bias entries are zeroed. Returns the channels re-initialised.
    @discardableResult
    public static func reinitialize(_ model: TransformerModel, signature: Signature, seed: UInt64) -> Int {
        var rng = SeededRandom(seed: seed)
        var count = 0
        for (layer, block) in model.blocks.enumerated() {
            let units = signature.units(layer: layer, module: .mlp).filter { $0 >= 0 && $0 < model.config.intermediateSize }
            let slices = UnitSlices(block: block, module: .mlp, units: units)
            for (linear, rows) in slices.outputRows {
                let std = Self.std(linear.weight.value), cols = linear.inFeatures, w = linear.weight.value.data
                for r in rows {
                    for c in 0..<cols { w[r * cols + c] = rng.normal(std: std) }
                    linear.bias?.value.data[r] = 0
                }
            }
            for (linear, columns) in slices.inputColumns {
                let std = Self.std(linear.weight.value), cols = linear.inFeatures, w = linear.weight.value.data
                for r in 0..<linear.outFeatures { for c in columns { w[r * cols + c] = rng.normal(std: std) } }
            }
            count += units.count
        }
        return count
    }

    /// Zeroes the adapter entries of the signature's channels in the LoRA adapters attached
    /// to `model`: B rows of the projections producing a channel, A columns of the one
    /// reading it (MLP neurons and attention heads). Returns the channels touched.
    @discardableResult
    public static func zeroAdapters(of model: TransformerModel, signature: Signature) -> Int {
        var count = 0
        for (layer, block) in model.blocks.enumerated() {
            for module in UnitModule.allCases {
                let units = signature.units(layer: layer, module: module)
                let limit = module == .mlp ? model.config.intermediateSize : block.attention.heads
                let valid = units.filter { $0 >= 0 && $0 < limit }
                let slices = UnitSlices(block: block, module: module, units: valid)
                var touched = false
                for (linear, rows) in slices.outputRows {
                    guard let adapter = linear.adapter as? LoRAAdapter else { continue }
                    let b = adapter.b.value.data, r = adapter.rank
                    for row in rows { (b + row * r).update(repeating: 0, count: r) }
                    touched = true
                }
                for (linear, columns) in slices.inputColumns {
                    guard let adapter = linear.adapter as? LoRAAdapter else { continue }
                    let a = adapter.a.value.data, inF = linear.inFeatures
                    for k in 0..<adapter.rank { for c in columns { a[k * inF + c] = 0 } }
                    touched = true
                }
                if touched { count += valid.count }
            }
        }
        return count
    }

    static func std(_ t: Tensor) -> Float {
        let n = t.count
        guard n > 1 else { return 0.02 }
        var sum = 0.0, sq = 0.0
        for i in 0..<n { let v = Double(t.data[i]); sum += v; sq += v * v }
        let mean = sum / Double(n)
        let s = (max(sq / Double(n) - mean * mean, 0)).squareRoot()
        return s > 0 && s.isFinite ? Float(s) : 0.02
    }
}
