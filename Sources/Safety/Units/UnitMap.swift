import Checkpoints
import Engine
import Models

/// The SSAH unit map of a model: for every layer, the normalised safety and utility
/// importance of each MLP neuron and each attention head, and the class each unit falls in.
///
/// **Normalisation.** Raw scores are divided by their layer's mean (per layer, per module
/// kind, per dataset), so `1` means "as important as the layer's average unit". Layers
/// differ in activation scale by orders of magnitude; dividing by the mean removes that
/// scale while keeping each layer's shape: a unit ten times its layer's average stays ten
/// times apart, which rank normalisation would flatten to "the top rank". Since every layer
/// is normalised on each dataset separately, `I_S − I_U` compares a unit's standing on the
/// safety set with its standing on the utility set, free of global shifts between the sets.
/// A layer whose scores are all zero stays zero.
///
/// **Classes.** Quotas are global per module kind (all neurons of the model together, all
/// heads together; the kinds have different units, so they are not pooled) and assigned in
/// this order, each from the units not yet taken:
/// 1. SCU: the `sizes.scu` share with the highest `I_S − I_U`;
/// 2. UCU: the `sizes.ucu` share with the lowest `I_S − I_U`;
/// 3. RU: the `sizes.ru` share with the lowest `I_S + I_U`;
/// 4. CU: the rest.
/// The critical classes go first so that each is exactly the top of its own ranking (what
/// freezing protects and what pruning validates), and RU (the units "route: ru" lets
/// training change) is drawn only from units no critical ranking claimed. Ties break by
/// layer, then unit index, so the map is deterministic.
public struct UnitMap: Sendable, Equatable {
    /// One module of one layer.
    public struct Entry: Sendable, Equatable {
        /// Normalised safety importance `I_S` of each unit.
        public var safety: [Double]
        /// Normalised utility importance `I_U` of each unit.
        public var utility: [Double]
        /// Class of each unit.
        public var classes: [UnitClass]

        /// An entry; all three arrays have one element per unit.
        public init(safety: [Double], utility: [Double], classes: [UnitClass]) {
            self.safety = safety
            self.utility = utility
            self.classes = classes
        }

        /// Units in this module.
        public var count: Int { classes.count }

        /// Indices of the units of class `c`.
        public func units(of c: UnitClass) -> [Int] { classes.indices.filter { classes[$0] == c } }
    }

    /// `mlp[layer]`: one unit per intermediate neuron.
    public private(set) var mlp: [Entry]
    /// `attn[layer]`: one unit per query head.
    public private(set) var attn: [Entry]
    /// The quotas the classes were drawn with.
    public private(set) var sizes: UnitSizes

    /// Builds the map from raw scores: normalises each layer by its mean, then classifies.
    public init(safety: UnitScores, utility: UnitScores, sizes: UnitSizes = UnitSizes()) throws(UnitMapError) {
        guard safety.layerCount == utility.layerCount else {
            throw .incompatible(reason: "safety scores have \(safety.layerCount) layers, utility \(utility.layerCount)")
        }
        func entries(_ module: UnitModule) throws(UnitMapError) -> [Entry] {
            var out: [Entry] = []
            for layer in 0..<safety.layerCount {
                let s = safety[layer, module], u = utility[layer, module]
                guard s.count == u.count else {
                    throw .shapeMismatch(source: "utility scores", key: "\(layer)/\(module.rawValue)", expected: s.count, found: u.count)
                }
                out.append(Entry(safety: Self.normalise(s), utility: Self.normalise(u),
                                 classes: [UnitClass](repeating: .cu, count: s.count)))
            }
            return out
        }
        try self.init(mlp: entries(.mlp), attn: entries(.attn), sizes: sizes)
    }

    /// A map from already normalised scores; the classes in `mlp` and `attn` are replaced by
    /// a fresh classification with `sizes`.
    public init(mlp: [Entry], attn: [Entry], sizes: UnitSizes) throws(UnitMapError) {
        try sizes.validate()
        self.mlp = mlp
        self.attn = attn
        self.sizes = sizes
        for module in UnitModule.allCases { classify(module) }
    }

    /// The entry of one module of one layer.
    public subscript(layer: Int, module: UnitModule) -> Entry {
        module == .mlp ? mlp[layer] : attn[layer]
    }

    /// Number of layers.
    public var layerCount: Int { mlp.count }

    /// `scores / mean(scores)`; all zeros stay zeros.
    public static func normalise(_ scores: [Double]) -> [Double] {
        guard !scores.isEmpty else { return [] }
        let mean = scores.reduce(0, +) / Double(scores.count)
        guard mean > 0, mean.isFinite else { return [Double](repeating: 0, count: scores.count) }
        return scores.map { $0 / mean }
    }

    /// The same scores classified with other quotas.
    public func reclassified(sizes: UnitSizes) throws(UnitMapError) -> UnitMap {
        try UnitMap(mlp: mlp, attn: attn, sizes: sizes)
    }

    // MARK: Classification

    /// Flat (layer, unit) addresses of one module kind, in layer order.
    private func addresses(_ module: UnitModule) -> [(layer: Int, unit: Int)] {
        let entries = module == .mlp ? mlp : attn
        var out: [(Int, Int)] = []
        for (l, e) in entries.enumerated() { for j in 0..<e.count { out.append((l, j)) } }
        return out
    }

    private mutating func classify(_ module: UnitModule) {
        let entries = module == .mlp ? mlp : attn
        let addr = addresses(module)
        let diff = addr.map { entries[$0.layer].safety[$0.unit] - entries[$0.layer].utility[$0.unit] }
        let sum = addr.map { entries[$0.layer].safety[$0.unit] + entries[$0.layer].utility[$0.unit] }
        var cls = [UnitClass](repeating: .cu, count: addr.count)
        var taken = [Bool](repeating: false, count: addr.count)
        // Flat index order equals (layer, unit) order, so ties break by the index itself.
        func take(_ quota: Int, _ c: UnitClass, by key: [Double], descending: Bool) {
            let free = addr.indices.filter { !taken[$0] }
            let sorted = free.sorted { a, b in
                if key[a] != key[b] { return descending ? key[a] > key[b] : key[a] < key[b] }
                return a < b
            }
            for i in sorted.prefix(quota) { cls[i] = c; taken[i] = true }
        }
        let n = addr.count
        take(UnitSizes.count(sizes.scu, of: n), .scu, by: diff, descending: true)
        take(UnitSizes.count(sizes.ucu, of: n), .ucu, by: diff, descending: false)
        take(UnitSizes.count(sizes.ru, of: n), .ru, by: sum, descending: false)
        var result = entries
        for (i, a) in addr.enumerated() { result[a.layer].classes[a.unit] = cls[i] }
        if module == .mlp { mlp = result } else { attn = result }
    }

    /// Complex units of one module kind ranked by `I_S − I_U`, highest (most safety-leaning) first.
    public func complexRanking(_ module: UnitModule) -> [(layer: Int, unit: Int)] {
        let entries = module == .mlp ? mlp : attn
        let cu = addresses(module).enumerated().filter { entries[$0.element.layer].classes[$0.element.unit] == .cu }
        let key = { (a: (layer: Int, unit: Int)) in entries[a.layer].safety[a.unit] - entries[a.layer].utility[a.unit] }
        return cu.sorted { x, y in
            let (kx, ky) = (key(x.element), key(y.element))
            return kx != ky ? kx > ky : x.offset < y.offset
        }.map(\.element)
    }

    /// The top `fraction` (rounded to nearest) of complex units of one module kind by `I_S − I_U`:
    /// what `freeze: scu+cu_top:<fraction>` freezes beyond SCU.
    public func topComplexUnits(_ module: UnitModule, fraction: Double) -> [(layer: Int, unit: Int)] {
        let ranking = complexRanking(module)
        return Array(ranking.prefix(UnitSizes.count(max(0, min(1, fraction)), of: ranking.count)))
    }

    // MARK: Counts

    /// Units per class, over all layers of `module` (both kinds when nil).
    public func classCounts(_ module: UnitModule? = nil) -> [UnitClass: Int] {
        var counts = Dictionary(uniqueKeysWithValues: UnitClass.allCases.map { ($0, 0) })
        let entries = module.map { $0 == .mlp ? mlp : attn } ?? (mlp + attn)
        for e in entries { for c in e.classes { counts[c, default: 0] += 1 } }
        return counts
    }

    /// Units of one kind, over all layers.
    public func unitCount(_ module: UnitModule) -> Int {
        (module == .mlp ? mlp : attn).reduce(0) { $0 + $1.count }
    }

    // MARK: Checkpoint form

    /// Value of the `/units` attribute `normalisation`.
    public static let normalisationName = "layer_mean"

    /// The checkpoint's `/units` section: per layer `mlp` and `attn`, each with `classes`
    /// (int8) and `scores` `[units, 2]` (columns: normalised I_S, normalised I_U). The quotas
    /// and the normalisation go into the section's attributes, next to `extra`.
    public func checkpointUnits(attributes extra: [String: AttributeValue] = [:]) -> UnitMaps {
        var maps = UnitMaps(attributes: extra)
        maps.attributes["normalisation"] = .string(Self.normalisationName)
        maps.attributes["score_columns"] = .string("safety,utility")
        maps.attributes["size_scu"] = .double(sizes.scu)
        maps.attributes["size_ucu"] = .double(sizes.ucu)
        maps.attributes["size_ru"] = .double(sizes.ru)
        for layer in 0..<layerCount {
            var modules: [String: UnitMapEntry] = [:]
            for module in UnitModule.allCases {
                let e = self[layer, module]
                let scores = Tensor(zeros: [e.count, 2])
                for j in 0..<e.count {
                    scores.data[2 * j] = Float(e.safety[j])
                    scores.data[2 * j + 1] = Float(e.utility[j])
                }
                modules[module.rawValue] = UnitMapEntry(classes: e.classes.map(\.rawValue), scores: scores)
            }
            maps.layers[layer] = modules
        }
        return maps
    }

    /// Reads a map from a checkpoint's `/units` section, checking it fits `config`
    /// (every layer, `intermediate_size` neurons and `num_heads` heads, two score columns).
    /// The stored classes are kept as they are; `source` names the file in errors.
    public init(checkpoint units: UnitMaps, config: ModelConfig, source: String) throws(UnitMapError) {
        var mlp: [Entry] = [], attn: [Entry] = []
        for layer in 0..<config.numLayers {
            for module in UnitModule.allCases {
                let key = "\(layer)/\(module.rawValue)"
                guard let stored = units.layers[layer]?[module.rawValue] else { throw .missingEntry(source: source, key: key) }
                let expected = module == .mlp ? config.intermediateSize : config.numHeads
                guard stored.classes.count == expected else {
                    throw .shapeMismatch(source: source, key: key + "/classes", expected: expected, found: stored.classes.count)
                }
                guard stored.scores.shape == [expected, 2] else {
                    throw .shapeMismatch(source: source, key: key + "/scores", expected: 2 * expected, found: stored.scores.count)
                }
                var entry = Entry(safety: [], utility: [], classes: [])
                for j in 0..<expected {
                    // The reader has checked classes are in 0...3.
                    entry.classes.append(UnitClass(rawValue: stored.classes[j]) ?? .cu)
                    entry.safety.append(Double(stored.scores.data[2 * j]))
                    entry.utility.append(Double(stored.scores.data[2 * j + 1]))
                }
                if module == .mlp { mlp.append(entry) } else { attn.append(entry) }
            }
        }
        if let extra = units.layers.keys.first(where: { $0 < 0 || $0 >= config.numLayers }) {
            throw .shapeMismatch(source: source, key: "\(extra)", expected: config.numLayers, found: units.layers.count)
        }
        let a = units.attributes
        self.mlp = mlp
        self.attn = attn
        self.sizes = UnitSizes(scu: a["size_scu"]?.doubleValue ?? UnitSizes().scu,
                               ucu: a["size_ucu"]?.doubleValue ?? UnitSizes().ucu,
                               ru: a["size_ru"]?.doubleValue ?? UnitSizes().ru)
    }
}
