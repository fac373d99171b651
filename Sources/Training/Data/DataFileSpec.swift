import Foundation

/// One data file named by a recipe, with the label and weight it gives every line.
public struct DataFileSpec: Sendable, Equatable {
    /// The file.
    public let path: RecipePath
    /// Label for lines without their own; nil leaves them unlabelled.
    public let label: SafetyLabel?
    /// Sampling weight relative to the other files.
    public let weight: Double

    /// Creates a spec.
    public init(path: RecipePath, label: SafetyLabel? = nil, weight: Double = 1) {
        self.path = path
        self.label = label
        self.weight = weight
    }

    /// Reads a list item: a bare path, or a mapping with `path`, `label` and `weight`.
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
                                weight: try r.double("weight", default: 1, range: ValueRange(lower: 0, lowerInclusive: false, upper: 1000)))
        default:
            throw RecipeError.wrongType(node.location, keyPath: keyPath, expected: "a path or a mapping with path, label, weight",
                                        got: node.summary)
        }
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("path", .string(path.relative(to: root))),
                 ("label", label.map { .string($0.rawValue) } ?? .null),
                 ("weight", .double(weight))])
    }
}
