import Engine
import Models

/// Removes units from a model by zeroing their weights, the experiment that validates a
/// unit map (pruning SCU should raise ASR far more than it lowers utility; pruning RU
/// should change neither much).
///
/// An MLP neuron loses its rows of up/gate (`c_fc`) with their bias entries, so its
/// activation is exactly zero, and its column of down (`c_proj`). A head loses its input
/// columns of `o_proj` (`attn.c_proj`), which removes its output from the residual stream;
/// its q/k/v rows are left, since nothing reads them any more.
public enum UnitPruner {
    /// Zeroes the units of `classes` in `model` in place; returns the units pruned per kind.
    @discardableResult
    public static func prune(_ classes: Set<UnitClass>, of map: UnitMap, in model: TransformerModel) throws(UnitMapError) -> [UnitModule: Int] {
        let mask = UnitMask(map: map, classes: classes)
        try UnitFreezer.check(mask, fits: model)
        for (layer, block) in model.blocks.enumerated() {
            for module in UnitModule.allCases {
                let slices = UnitSlices(block: block, module: module, units: mask.units(layer: layer, module: module))
                if module == .mlp {
                    for (linear, rows) in slices.outputRows { zeroRows(linear, rows) }
                }
                for (linear, columns) in slices.inputColumns { zeroColumns(linear, columns) }
            }
        }
        return [.mlp: mask.count(.mlp), .attn: mask.count(.attn)]
    }

    /// A copy of `model` (base weights only, no adapters) with the units of `classes` zeroed.
    public static func pruned(_ classes: Set<UnitClass>, of map: UnitMap, from model: TransformerModel) throws -> (model: TransformerModel, units: [UnitModule: Int]) {
        let copy = try TransformerModel(config: model.config, weights: model.huggingFaceWeights(sharing: true), trainable: false)
        let units = try prune(classes, of: map, in: copy)
        return (copy, units)
    }

    private static func zeroRows(_ linear: Linear, _ rows: [Int]) {
        let w = linear.weight.value.data, cols = linear.inFeatures
        for r in rows { (w + r * cols).update(repeating: 0, count: cols) }
        if let b = linear.bias?.value.data { for r in rows { b[r] = 0 } }
    }

    private static func zeroColumns(_ linear: Linear, _ columns: [Int]) {
        let w = linear.weight.value.data, cols = linear.inFeatures
        for r in 0..<linear.outFeatures { for c in columns { w[r * cols + c] = 0 } }
    }
}
