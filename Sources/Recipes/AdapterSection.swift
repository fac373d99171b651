import Engine
import Training

/// `adapters`: which weights are trained, and how.
public struct AdapterSection: Sendable, Equatable {
    /// LoRA adapters or every weight.
    public enum Kind: String, Sendable, CaseIterable {
        case lora, full
    }

    /// The default targets: every attention projection of both families.
    public static let defaultTargets = ["q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "attn.c_proj"]

    /// How a LoRA run holds the frozen base's projections while it trains.
    public enum BasePrecision: String, Sendable, CaseIterable {
        case float32, float16, q8_0

        /// The packed format, or nil for float32.
        public var packed: PackedMatrix.Format? { PackedMatrix.Format(rawValue: rawValue) }
    }

    /// LoRA or full fine-tuning.
    public let kind: Kind
    /// The frozen base's projections while training (LoRA only).
    public let basePrecision: BasePrecision
    /// LoRA rank.
    public let rank: Int
    /// LoRA alpha; the update is scaled by alpha / rank.
    public let alpha: Double
    /// Dropout on the LoRA input.
    public let dropout: Double
    /// Modules that receive adapters.
    public let targets: [TargetPattern]

    /// The LoRA scale alpha / rank.
    public var scale: Double { alpha / Double(rank) }

    /// Whether any target pattern selects this module.
    public func targets(module name: String) -> Bool { targets.contains { $0.matches(module: name) } }

    init(reading r: MappingReader) throws {
        kind = try r.choice("kind", default: Kind.lora)
        rank = try r.int("rank", default: 8, range: .closed(1, 4096))
        alpha = try r.double("alpha", default: 16, range: .above(0))
        dropout = try r.double("dropout", default: 0, range: .probability)
        basePrecision = try r.choice("base_precision", default: BasePrecision.float32)
        if kind == .full, basePrecision != .float32 {
            throw RecipeError.conflict(r.location(of: "base_precision"), keyPath: r.full("base_precision"),
                                       message: "packs a frozen base; full fine-tuning trains it (use kind: lora, or drop it)")
        }
        let texts = try r.stringList("targets", default: Self.defaultTargets)
        if texts.isEmpty {
            throw RecipeError.conflict(r.location(of: "targets"), keyPath: r.full("targets"), message: "needs at least one pattern")
        }
        let items = try r.list("targets")
        targets = try texts.enumerated().map { index, text in
            let (pattern, reason, suggestion) = TargetPattern.parse(text)
            guard let pattern else {
                let location = items?[index].location ?? r.location(of: "targets")
                if let suggestion {
                    let choices = TargetPattern.knownModules
                    throw RecipeError.invalidChoice(location, keyPath: "\(r.full("targets"))[\(index)]", value: text,
                                                    choices: choices, suggestion: suggestion)
                }
                throw RecipeError.conflict(location, keyPath: "\(r.full("targets"))[\(index)]", message: "'\(text)' \(reason)")
            }
            return pattern
        }
    }

    // base_precision appears only when not float32, so recipes written before it keep their text and hash.
    var canonical: CanonicalValue {
        .object([("kind", .string(kind.rawValue)), ("rank", .int(rank)), ("alpha", .double(alpha)),
                 ("dropout", .double(dropout))]
                + (basePrecision == .float32 ? [] : [("base_precision", .string(basePrecision.rawValue))])
                + [("targets", .list(targets.map { .string($0.pattern) }))])
    }
}
