import Models

/// Where a set of units lives in one block's weights (all in `Linear`'s `[out, in]` layout):
/// the output rows of the projections that produce them and the input columns of the
/// projection that reads them.
///
/// - MLP neuron j: row j of `gate_proj` and `up_proj` (GPT-2 `c_fc`), column j of
///   `down_proj` (GPT-2 `mlp.c_proj`).
/// - Attention head h (head size D): rows `[h·D, (h+1)·D)` of `q_proj`, columns
///   `[h·D, (h+1)·D)` of `o_proj` (GPT-2 `attn.c_proj`). Key/value rows of kv head g
///   belong to every query head h with `h / (heads / kvHeads) == g` (grouped-query
///   attention), so they are included only when ALL of g's query heads are in the set:
///   changing a shared kv head would change heads that are not selected. GPT-2's fused
///   `c_attn` holds the q, k and v row blocks at offsets 0, heads·D and (heads + kvHeads)·D.
public struct UnitSlices {
    /// Projections whose output rows (and bias entries) belong to the units.
    public var outputRows: [(linear: Linear, rows: [Int])] = []
    /// Projections whose input columns belong to the units.
    public var inputColumns: [(linear: Linear, columns: [Int])] = []

    /// The slices of `units` of `module` in `block`; empty when `units` is empty.
    public init(block: Block, module: UnitModule, units: [Int]) {
        guard !units.isEmpty else { return }
        switch module {
        case .mlp:
            switch block.mlp.form {
            case let .gelu(fc): outputRows = [(fc, units)]
            case let .swiglu(gate, up): outputRows = [(gate, units), (up, units)]
            }
            inputColumns = [(block.mlp.down, units)]
        case .attn:
            let a = block.attention
            let d = a.headDim
            func span(_ heads: [Int], offset: Int = 0) -> [Int] { heads.flatMap { (offset + $0 * d)..<(offset + ($0 + 1) * d) } }
            let group = a.heads / a.kvHeads
            let selected = Set(units)
            let kv = (0..<a.kvHeads).filter { g in (g * group..<(g + 1) * group).allSatisfy(selected.contains) }
            switch a.projections {
            case let .fused(qkv):
                outputRows = [(qkv, span(units) + span(kv, offset: a.heads * d) + span(kv, offset: (a.heads + a.kvHeads) * d))]
            case let .separate(q, k, v):
                outputRows = [(q, span(units))]
                if !kv.isEmpty { outputRows += [(k, span(kv)), (v, span(kv))] }
            }
            inputColumns = [(a.output, span(units))]
        }
    }
}
