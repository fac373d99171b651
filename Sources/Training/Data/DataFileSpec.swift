import Foundation

/// One data file named by a recipe, with the label and weight it gives every line.
public struct DataFileSpec: Sendable, Equatable {
    /// The file.
    public let path: RecipePath
    /// Label for lines without their own; nil leaves them unlabelled.
    public let label: SafetyLabel?
    /// Sampling weight relative to the other files.
    public let weight: Double
    /// Whether the answers are language-modelling targets; false: they only train the
    /// SA-ESS classification (the guard's answer probes), e.g. harmful prompts with compliant
    /// answers, which the model must recognise and never learn to write.
    public let trainAnswers: Bool

    /// Creates a spec.
    public init(path: RecipePath, label: SafetyLabel? = nil, weight: Double = 1, trainAnswers: Bool = true) {
        self.path = path
        self.label = label
        self.weight = weight
        self.trainAnswers = trainAnswers
    }

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
