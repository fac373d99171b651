import Foundation
import Training

/// A `data.train` / `data.eval` list item read from a recipe, and written back canonically.
extension DataFileSpec {
    /// Reads a list item: a bare path, or a mapping with `path`, `label`, `weight` and `train_answers`.
    static func read(_ node: RecipeNode, keyPath: String) throws -> DataFileSpec {
        switch node.kind {
        case .scalar:
            return DataFileSpec(path: try MappingReader.path(node, keyPath: keyPath))
        case .mapping:
            let r = try MappingReader(node, path: keyPath, allowed: RecipeSchema.children(of: "data.train[]"),
                                      parent: node.location)
            guard let path = try r.path("path") else {
                throw RecipeError.missingKey(node.location, keyPath: r.full("path"))
            }
            return DataFileSpec(path: path, label: r.has("label") ? try r.choice("label", default: SafetyLabel.benign) : nil,
                                weight: try r.double("weight", default: 1, range: ValueRange(lower: 0, lowerInclusive: false, upper: 1000)),
                                trainAnswers: try r.bool("train_answers", default: true))
        default:
            throw RecipeError.wrongType(node.location, keyPath: keyPath, expected: "a path or a mapping with path, label, weight, train_answers",
                                        got: node.summary)
        }
    }

    // train_answers appears only when false, so recipes written before it keep their canonical text.
    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("path", .string(path.relative(to: root))),
                 ("label", label.map { .string($0.rawValue) } ?? .null),
                 ("weight", .double(weight))] + (trainAnswers ? [] : [("train_answers", .bool(false))]))
    }
}
