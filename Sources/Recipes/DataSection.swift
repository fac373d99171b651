import Foundation
import Training

/// `data`: the JSONL files to train and evaluate on.
public struct DataSection: Sendable, Equatable {
    /// Training files (at least one).
    public let train: [DataFileSpec]
    /// Held-out files for the eval loss.
    public let eval: [DataFileSpec]
    /// Line format.
    public let format: DataFormat

    init(reading r: MappingReader) throws {
        guard let trainItems = try r.list("train") else {
            throw RecipeError.missingKey(r.location, keyPath: r.full("train"))
        }
        guard !trainItems.isEmpty else {
            throw RecipeError.conflict(r.location(of: "train"), keyPath: r.full("train"), message: "needs at least one file")
        }
        train = try trainItems.enumerated().map { try DataFileSpec.read($1, keyPath: "\(r.full("train"))[\($0)]") }
        eval = try (r.list("eval") ?? []).enumerated().map { try DataFileSpec.read($1, keyPath: "\(r.full("eval"))[\($0)]") }
        format = try r.choice("format", default: DataFormat.auto)
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("train", .list(train.map { $0.canonical(relativeTo: root) })),
                 ("eval", .list(eval.map { $0.canonical(relativeTo: root) })),
                 ("format", .string(format.rawValue))])
    }
}
