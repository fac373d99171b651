import Engine

/// Attaching LoRA adapters to a model's projections by module name, and merging them
/// into (or back out of) the base weights.
public enum LoRA {
    /// How to adapt a model.
    public struct Parameters: Sendable, Equatable {
        public var rank: Int
        public var alpha: Float
        public var dropout: Float
        /// Seed of the adapters' initialisation and dropout.
        public var seed: UInt64

        public init(rank: Int = 8, alpha: Float = 16, dropout: Float = 0, seed: UInt64 = 0) {
            self.rank = rank
            self.alpha = alpha
            self.dropout = dropout
            self.seed = seed
        }
    }

    /// A selection that matches nothing, or a rank that cannot work.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case noMatchingModules
        case invalidRank(Int)
        public var description: String {
            switch self {
            case .noMatchingModules: return "the LoRA targets match no module of the model"
            case let .invalidRank(r): return "LoRA rank \(r) must be positive"
            }
        }
    }

    /// Attaches a fresh adapter to every projection whose module path (`namedLinears`)
    /// `select` accepts, and returns them by path. Each adapter gets its own seed derived
    /// from `parameters.seed` and its position, so the set is reproducible.
    @discardableResult
    public static func attach(to model: TransformerModel, _ parameters: Parameters,
                              where select: (String) -> Bool) throws(Failure) -> [(String, LoRAAdapter)] {
        guard parameters.rank > 0 else { throw .invalidRank(parameters.rank) }
        var attached: [(String, LoRAAdapter)] = []
        for (index, (path, linear)) in model.namedLinears.enumerated() where select(path) {
            let adapter = LoRAAdapter(inFeatures: linear.inFeatures, outFeatures: linear.outFeatures,
                                      rank: parameters.rank, alpha: parameters.alpha, dropout: parameters.dropout,
                                      seed: parameters.seed &+ UInt64(index) &* 0x9E37_79B9)
            // Unique names (PEFT's, without its `base_model.model.` prefix) for optimizers and checkpoints.
            adapter.a.name = "\(path).lora_A.weight"
            adapter.b.name = "\(path).lora_B.weight"
            linear.adapter = adapter
            attached.append((path, adapter))
        }
        if attached.isEmpty { throw .noMatchingModules }
        return attached
    }

    /// The LoRA adapters currently attached, by module path.
    public static func adapters(of model: TransformerModel) -> [(String, LoRAAdapter)] {
        model.namedLinears.compactMap { path, linear in (linear.adapter as? LoRAAdapter).map { (path, $0) } }
    }

    /// Adds every adapter's `scaling · B · A` into its base weight and detaches it: the
    /// model then computes the same function with no adapter cost.
    public static func merge(_ model: TransformerModel) {
        for (_, linear) in model.namedLinears {
            guard let adapter = linear.adapter as? LoRAAdapter else { continue }
            let d = adapter.delta(), w = linear.weight.value
            for i in 0..<w.count { w.data[i] += d.data[i] }
            linear.adapter = nil
        }
    }

    /// Subtracts `adapters`' deltas from their base weights and re-attaches them: the
    /// inverse of `merge` (up to float rounding).
    public static func unmerge(_ model: TransformerModel, adapters: [(String, LoRAAdapter)]) {
        let byPath = Dictionary(adapters, uniquingKeysWith: { a, _ in a })
        for (path, linear) in model.namedLinears {
            guard let adapter = byPath[path] else { continue }
            let d = adapter.delta(), w = linear.weight.value
            for i in 0..<w.count { w.data[i] -= d.data[i] }
            linear.adapter = adapter
        }
    }
}
