import Training

/// The units training may not change, per layer and module kind (`true` = frozen),
/// derived from a unit map and the recipe's `safety.ssah.freeze` and `safety.ssah.route`.
///
/// `freeze` names units to keep: `scu`, `scu+cu_top:f` (SCU plus the top fraction f of
/// complex units by `I_S − I_U`, global per module kind), `scu+cu`. `route` names the
/// units updates may go to: `all`, `ru` (every unit that is not RU is frozen: the
/// alignment-budget mode), `ru+cu` (SCU and UCU frozen). The frozen set is the union of both.
public struct UnitMask: Sendable, Equatable, Codable {
    /// `mlp[layer][neuron]`.
    public var mlp: [[Bool]]
    /// `attn[layer][head]`.
    public var attn: [[Bool]]

    /// A mask from explicit flags, `[layer][unit]` per module kind.
    public init(mlp: [[Bool]], attn: [[Bool]]) {
        self.mlp = mlp
        self.attn = attn
    }

    /// The units of the given classes.
    public init(map: UnitMap, classes: Set<UnitClass>) {
        mlp = map.mlp.map { $0.classes.map(classes.contains) }
        attn = map.attn.map { $0.classes.map(classes.contains) }
    }

    /// The frozen set for a recipe's settings.
    public init(map: UnitMap, freeze: SSAHSettings.Freeze, route: SSAHSettings.Route) {
        var frozen: Set<UnitClass> = []
        switch freeze {
        case .none: break
        case .scu, .scuPlusTopCU: frozen.insert(.scu)
        case .scuPlusCU: frozen.formUnion([.scu, .cu])
        }
        switch route {
        case .all: break
        case .ru: frozen.formUnion([.ucu, .cu, .scu])
        case .ruPlusCU: frozen.formUnion([.ucu, .scu])
        }
        self.init(map: map, classes: frozen)
        if case let .scuPlusTopCU(fraction) = freeze {
            for (l, j) in map.topComplexUnits(.mlp, fraction: fraction) { mlp[l][j] = true }
            for (l, j) in map.topComplexUnits(.attn, fraction: fraction) { attn[l][j] = true }
        }
    }

    /// The flags of one module kind, `[layer][unit]`.
    public func flags(_ module: UnitModule) -> [[Bool]] { module == .mlp ? mlp : attn }

    /// Indices of the selected units of one module of one layer.
    public func units(layer: Int, module: UnitModule) -> [Int] {
        let flags = flags(module)[layer]
        return flags.indices.filter { flags[$0] }
    }

    /// Selected units of one kind over all layers.
    public func count(_ module: UnitModule) -> Int {
        (module == .mlp ? mlp : attn).reduce(0) { $0 + $1.count { $0 } }
    }

    /// Whether no unit is selected.
    public var isEmpty: Bool { count(.mlp) == 0 && count(.attn) == 0 }
}
