import Training

/// `optimizer`: the update rule and its hyper-parameters.
public struct OptimizerSection: Sendable, Equatable {
    /// Optimizer family.
    public enum Name: String, Sendable, CaseIterable {
        case adamw, sgd
    }

    /// Optimizer family.
    public let name: Name
    /// Peak learning rate.
    public let lr: Double
    /// AdamW moment decay rates (beta1, beta2).
    public let betas: (Double, Double)
    /// AdamW epsilon.
    public let eps: Double
    /// Weight decay.
    public let weightDecay: Double
    /// SGD momentum.
    public let momentum: Double
    /// Global gradient-norm clip; 0 disables clipping.
    public let gradClip: Double

    /// Compares every field (tuples are not Equatable on their own).
    public static func == (a: OptimizerSection, b: OptimizerSection) -> Bool {
        a.name == b.name && a.lr == b.lr && a.betas == b.betas && a.eps == b.eps && a.weightDecay == b.weightDecay
            && a.momentum == b.momentum && a.gradClip == b.gradClip
    }

    init(reading r: MappingReader) throws {
        name = try r.choice("name", default: Name.adamw)
        lr = try r.double("lr", default: 1e-4, range: ValueRange(lower: 0, lowerInclusive: false, upper: 10))
        if let items = try r.list("betas") {
            guard items.count == 2 else {
                throw RecipeError.wrongType(r.location(of: "betas"), keyPath: r.full("betas"),
                                            expected: "a list of 2 numbers", got: "\(items.count) items")
            }
            let values = try items.enumerated().map {
                try MappingReader.number($1, keyPath: "\(r.full("betas"))[\($0)]", range: .probability)
            }
            betas = (values[0], values[1])
        } else {
            betas = (0.9, 0.999)
        }
        eps = try r.double("eps", default: 1e-8, range: .above(0))
        weightDecay = try r.double("weight_decay", default: 0, range: .closed(0, 10))
        momentum = try r.double("momentum", default: 0, range: .probability)
        gradClip = try r.double("grad_clip", default: 1, range: .atLeast(0))
    }

    var canonical: CanonicalValue {
        .object([("name", .string(name.rawValue)), ("lr", .double(lr)), ("betas", .list([.double(betas.0), .double(betas.1)])),
                 ("eps", .double(eps)), ("weight_decay", .double(weightDecay)), ("momentum", .double(momentum)),
                 ("grad_clip", .double(gradClip))])
    }
}
