import Checkpoints
import Foundation
import Models
import Training

/// Computes a unit map from a safety file and a utility file, or reuses the one a
/// checkpoint already stores: the map is computed once and cached in the checkpoint's
/// `/units` section, and later runs (a recipe, `safetune units`) read it back.
public struct UnitMapBuilder {
    /// Class quotas.
    public var sizes: UnitSizes
    /// At most this many examples of each file (nil: all).
    public var limit: Int?
    /// Sequences per forward pass.
    public var batchSize: Int

    /// A builder.
    public init(sizes: UnitSizes = UnitSizes(), limit: Int? = nil, batchSize: Int = 8) {
        self.sizes = sizes
        self.limit = limit
        self.batchSize = batchSize
    }

    /// The examples of a JSONL file (any format `JSONLReader` accepts). When any line is
    /// labelled, only lines labelled `keep` are used, so one corpus `val.jsonl` (harmful
    /// prompts with refusals labelled malicious, benign tasks labelled benign) can serve as
    /// both the safety set (`keep: .malicious`) and the utility set (`keep: .benign`).
    public static func examples(_ url: URL, keep: SafetyLabel, limit: Int?) throws -> (examples: [Example], sha256: String) {
        let contents = try JSONLReader().read(url: url)
        var examples = contents.examples
        if examples.contains(where: { $0.label != nil }) { examples = examples.filter { $0.label == keep } }
        if let limit { examples = Array(examples.prefix(limit)) }
        guard !examples.isEmpty else { throw UnitMapError.emptyDataset(name: RecipeLocation.displayPath(url)) }
        return (examples, contents.sha256)
    }

    /// Scores `model` on both files (rendered by `encoder`: prompt and completion through the
    /// chat template) and classifies. Returns the map and the `/units` attributes recording
    /// the data (file names, digests, example and token counts).
    public func build(model: TransformerModel, encoder: ExampleEncoder, safety: URL, utility: URL) throws
        -> (map: UnitMap, attributes: [String: AttributeValue]) {
        let scorer = UnitScorer(model: model, batchSize: batchSize)
        let s = try Self.examples(safety, keep: .malicious, limit: limit)
        let u = try Self.examples(utility, keep: .benign, limit: limit)
        let safetyScores = try scorer.score(s.examples.map(encoder.encode), name: RecipeLocation.displayPath(safety))
        let utilityScores = try scorer.score(u.examples.map(encoder.encode), name: RecipeLocation.displayPath(utility))
        let map = try UnitMap(safety: safetyScores, utility: utilityScores, sizes: sizes)
        let attributes: [String: AttributeValue] = [
            "safety_data": .string(safety.lastPathComponent), "safety_sha256": .string(s.sha256),
            "safety_examples": .int(Int64(s.examples.count)), "safety_tokens": .int(Int64(safetyScores.tokens)),
            "utility_data": .string(utility.lastPathComponent), "utility_sha256": .string(u.sha256),
            "utility_examples": .int(Int64(u.examples.count)), "utility_tokens": .int(Int64(utilityScores.tokens)),
            "template": .string(encoder.template.style.rawValue),
        ]
        return (map, attributes)
    }

    /// The map stored in `checkpoint`, reclassified when it was drawn with other quotas than
    /// `sizes`; nil when the checkpoint stores none. `source` names the file in errors.
    public func cached(in checkpoint: Checkpoint, source: String) throws(UnitMapError) -> UnitMap? {
        guard let units = checkpoint.units else { return nil }
        let stored = try UnitMap(checkpoint: units, config: checkpoint.config, source: source)
        return stored.sizes == sizes ? stored : try stored.reclassified(sizes: sizes)
    }

    /// The cached map when `checkpoint` has one, otherwise a fresh one from `safety` and
    /// `utility`, stored into `checkpoint.units` so that saving the checkpoint caches it.
    /// Returns the map and whether it was computed now.
    public func map(for checkpoint: inout Checkpoint, source: String, model: TransformerModel, encoder: ExampleEncoder,
                    safety: URL?, utility: URL?) throws -> (map: UnitMap, computed: Bool) {
        if let map = try cached(in: checkpoint, source: source) { return (map, false) }
        guard let safety, let utility else { throw UnitMapError.noScoringData(source: source) }
        let (map, attributes) = try build(model: model, encoder: encoder, safety: safety, utility: utility)
        checkpoint.units = map.checkpointUnits(attributes: attributes)
        return (map, true)
    }
}
