import Training

/// `training`: run length, batching and reproducibility.
public struct TrainingSection: Sendable, Equatable {
    /// Run length.
    public let length: Trainer.Setup.Length
    /// Sequences per micro-batch.
    public let batchSize: Int
    /// Micro-batches per optimizer step.
    public let gradAccum: Int
    /// Tokens per sequence.
    public let seqLen: Int
    /// Whether several examples share one sequence.
    public let packing: Bool
    /// Batches of examples of similar lengths (`training.group_by_length`).
    public let groupByLength: Bool
    /// Seed for shuffling, dropout and initialisation.
    public let seed: Int
    /// Compute threads; 0 means all cores (under mpirun, this process's share of them).
    public let threads: Int

    init(reading r: MappingReader) throws {
        let epochs = try r.optionalInt("epochs", range: .closed(1, 10_000))
        let steps = try r.optionalInt("steps", range: .closed(1, 10_000_000))
        switch (epochs, steps) {
        case let (e?, nil): length = .epochs(e)
        case let (nil, s?): length = .steps(s)
        case (_?, _?):
            throw RecipeError.conflict(r.location(of: "steps"), keyPath: r.full("steps"),
                                       message: "give exactly one of training.epochs and training.steps, not both (set the inherited one to null)")
        case (nil, nil):
            throw RecipeError.conflict(r.location, keyPath: r.path.isEmpty ? "training" : r.path,
                                       message: "give exactly one of training.epochs and training.steps")
        }
        batchSize = try r.int("batch_size", default: 8, range: .closed(1, 4096))
        gradAccum = try r.int("grad_accum", default: 1, range: .closed(1, 4096))
        seqLen = try r.int("seq_len", default: 512, range: .closed(8, 1_048_576))
        packing = try r.bool("packing", default: false)
        groupByLength = try r.bool("group_by_length", default: false)
        seed = try r.int("seed", default: 0, range: .atLeast(0))
        threads = try r.int("threads", default: 0, range: .closed(0, 1024))
    }

    var canonical: CanonicalValue {
        let epochs: CanonicalValue, steps: CanonicalValue
        switch length {
        case let .epochs(e): (epochs, steps) = (.int(e), .null)
        case let .steps(s): (epochs, steps) = (.null, .int(s))
        }
        return .object([("epochs", epochs), ("steps", steps), ("batch_size", .int(batchSize)),
                        ("grad_accum", .int(gradAccum)), ("seq_len", .int(seqLen)), ("packing", .bool(packing)),
                        ("seed", .int(seed)), ("threads", .int(threads))]
                       // Written only when on, so the text (and hash) of older recipes stays the same.
                       + (groupByLength ? [("group_by_length", .bool(true))] : []))
    }
}
