import Training

/// `eval`: what is measured during training.
public struct EvalSection: Sendable, Equatable {
    /// A built-in evaluation suite.
    public enum Suite: String, Sendable, CaseIterable {
        case safety, utility
    }

    /// Evaluate every this many optimizer steps; 0 means only at the end.
    public let every: Int
    /// Batches of eval data per evaluation; 0 means all.
    public let maxBatches: Int
    /// Built-in suites to run before and after training.
    public let suites: [Suite]
    /// Prompts of each kind the suites use; 0 means all.
    public let prompts: Int
    /// Tokens generated per answer in the suites.
    public let maxTokens: Int

    init(reading r: MappingReader) throws {
        every = try r.int("every", default: 100, range: .atLeast(0))
        maxBatches = try r.int("max_batches", default: 20, range: .atLeast(0))
        prompts = try r.int("prompts", default: 50, range: .atLeast(0))
        maxTokens = try r.int("max_tokens", default: 48, range: .closed(1, 4096))
        if let items = try r.list("suites") {
            var seen: [Suite] = []
            for (index, item) in items.enumerated() {
                let suite = try MappingReader.choice(item, keyPath: "\(r.full("suites"))[\(index)]", as: Suite.self)
                if seen.contains(suite) {
                    throw RecipeError.conflict(item.location, keyPath: "\(r.full("suites"))[\(index)]",
                                               message: "'\(suite.rawValue)' is listed twice")
                }
                seen.append(suite)
            }
            suites = seen
        } else {
            suites = Suite.allCases
        }
    }

    var canonical: CanonicalValue {
        .object([("every", .int(every)), ("max_batches", .int(maxBatches)),
                 ("suites", .list(suites.map { .string($0.rawValue) })), ("prompts", .int(prompts)),
                 ("max_tokens", .int(maxTokens))])
    }
}
