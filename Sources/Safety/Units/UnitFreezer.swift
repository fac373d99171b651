import Engine
import Models

/// Applies a `UnitMask` to a model about to be trained, so the frozen units' effective
/// weights cannot change:
/// - every LoRA adapter attached to an affected projection pins those rows (rows of B)
///   and columns (columns of A) at zero, so `W + ΔW` keeps them bit for bit;
/// - base weights that require gradients (full fine-tuning) get `Variable.updateMask`
///   zeros on those rows (weight and bias) and columns, which every optimizer honours
///   (no step, no weight decay). An existing mask is narrowed, never widened.
///
/// Parameters outside the units (embeddings, norms, output-projection biases) are left alone.
public enum UnitFreezer {
    /// What was frozen.
    public struct Summary: Sendable, Equatable, CustomStringConvertible {
        /// Frozen MLP neurons.
        public var mlpUnits = 0
        /// Frozen attention heads.
        public var attnUnits = 0
        /// Base-weight elements newly masked.
        public var maskedElements = 0
        /// Adapters told to pin rows or columns.
        public var adapterCalls = 0

        /// One line for progress output.
        public var description: String {
            "\(mlpUnits) MLP neurons and \(attnUnits) heads frozen (\(adapterCalls) adapters pinned, \(maskedElements) base-weight elements masked)"
        }
    }

    /// Freezes the units of `mask` in `model` (its attached adapters and trainable base weights).
    /// Throws when the mask does not fit the model or an attached adapter is not LoRA.
    @discardableResult
    public static func apply(_ mask: UnitMask, to model: TransformerModel) throws(UnitMapError) -> Summary {
        try check(mask, fits: model)
        var summary = Summary(mlpUnits: mask.count(.mlp), attnUnits: mask.count(.attn))
        for (layer, block) in model.blocks.enumerated() {
            for module in UnitModule.allCases {
                let slices = UnitSlices(block: block, module: module, units: mask.units(layer: layer, module: module))
                for (linear, rows) in slices.outputRows {
                    if let adapter = linear.adapter {
                        guard let lora = adapter as? LoRAAdapter else { throw .unsupportedAdapter(path: linear.path) }
                        lora.freezeOutputs(rows)
                        summary.adapterCalls += 1
                    }
                    summary.maskedElements += maskRows(linear, rows)
                }
                for (linear, columns) in slices.inputColumns {
                    if let adapter = linear.adapter {
                        guard let lora = adapter as? LoRAAdapter else { throw .unsupportedAdapter(path: linear.path) }
                        lora.freezeInputs(columns)
                        summary.adapterCalls += 1
                    }
                    summary.maskedElements += maskColumns(linear, columns)
                }
            }
        }
        return summary
    }

    /// Checks layer and unit counts of `mask` against `model`.
    static func check(_ mask: UnitMask, fits model: TransformerModel) throws(UnitMapError) {
        let n = model.blocks.count
        guard mask.mlp.count == n else { throw .shapeMismatch(source: "unit mask", key: "mlp layers", expected: n, found: mask.mlp.count) }
        guard mask.attn.count == n else { throw .shapeMismatch(source: "unit mask", key: "attn layers", expected: n, found: mask.attn.count) }
        for (l, block) in model.blocks.enumerated() {
            let f = block.mlp.down.inFeatures, h = block.attention.heads
            guard mask.mlp[l].count == f else { throw .shapeMismatch(source: "unit mask", key: "\(l)/mlp", expected: f, found: mask.mlp[l].count) }
            guard mask.attn[l].count == h else { throw .shapeMismatch(source: "unit mask", key: "\(l)/attn", expected: h, found: mask.attn[l].count) }
        }
    }

    /// Masks output rows of a trainable base weight and its bias; returns elements newly masked.
    private static func maskRows(_ linear: Linear, _ rows: [Int]) -> Int {
        var masked = 0
        let w = linear.weight, cols = linear.inFeatures
        if w.requiresGrad {
            let m = w.maskForUpdates().data
            for r in rows {
                for c in 0..<cols where m[r * cols + c] != 0 { m[r * cols + c] = 0; masked += 1 }
            }
        }
        if let b = linear.bias, b.requiresGrad {
            let m = b.maskForUpdates().data
            for r in rows where m[r] != 0 { m[r] = 0; masked += 1 }
        }
        return masked
    }

    /// Masks input columns of a trainable base weight; returns elements newly masked.
    private static func maskColumns(_ linear: Linear, _ columns: [Int]) -> Int {
        let w = linear.weight
        guard w.requiresGrad else { return 0 }
        var masked = 0
        let m = w.maskForUpdates().data, cols = linear.inFeatures
        for r in 0..<linear.outFeatures {
            for c in columns where m[r * cols + c] != 0 { m[r * cols + c] = 0; masked += 1 }
        }
        return masked
    }
}
