import Checkpoints
import Foundation
import Training

/// A validated, fully resolved fine-tuning recipe: every default filled in, every
/// cross-field rule checked, and a canonical text whose SHA-256 identifies the run.
///
/// Make one with `RecipeLoader`. Paths are resolved against the file that wrote them.
public struct Recipe: Sendable {
    /// Version tag written into the canonical text; bump when its meaning changes.
    public static let canonicalFormat = "safetune-recipe/1"

    /// Free-text description (`description`).
    public let summary: String?
    /// `model`.
    public let model: ModelSection
    /// `data`.
    public let data: DataSection
    /// `adapters`.
    public let adapters: AdapterSection
    /// `optimizer`.
    public let optimizer: OptimizerSection
    /// `schedule`.
    public let schedule: ScheduleSection
    /// `training`.
    public let training: TrainingSection
    /// `eval`.
    public let eval: EvalSection
    /// `safety`.
    public let safety: SafetySection
    /// `output`.
    public let output: OutputSection
    /// The recipe file, then each file it extends, nearest first.
    public let files: [URL]
    /// The `--set` arguments applied, in order.
    public let overrides: [String]
    /// Canonical JSON of the resolved recipe; paths relative to the recipe's folder so the
    /// text (and its hash) is the same on every machine.
    public let canonicalText: String
    /// Lowercase hex SHA-256 of `canonicalText` (UTF-8).
    public let sha256: String

    /// The folder of the recipe file: the base of the relative paths in the canonical text.
    public var directory: URL { (files.first ?? URL(fileURLWithPath: ".")).deletingLastPathComponent() }

    init(root: RecipeNode, files: [URL], overrides: [String]) throws {
        let top = try MappingReader(root, path: "", allowed: RecipeSchema.children(of: ""), parent: root.location)
        func section(_ name: String) throws -> MappingReader {
            try top.section(name, allowed: RecipeSchema.children(of: name))
        }
        let recipeFile = files.first ?? URL(fileURLWithPath: "recipe.yaml")
        summary = try top.optionalString("description")
        model = try ModelSection(reading: section("model"))
        data = try DataSection(reading: section("data"))
        adapters = try AdapterSection(reading: section("adapters"))
        optimizer = try OptimizerSection(reading: section("optimizer"))
        schedule = try ScheduleSection(reading: section("schedule"))
        let trainingReader = try section("training")
        training = try TrainingSection(reading: trainingReader)
        eval = try EvalSection(reading: section("eval"))
        safety = try SafetySection(reading: section("safety"), model: model)
        output = try OutputSection(reading: section("output"),
                                   defaultName: recipeFile.deletingPathExtension().lastPathComponent,
                                   recipeDirectory: recipeFile.deletingLastPathComponent())
        self.files = files
        self.overrides = overrides

        // Rules that span sections.
        let scheduleReader = try section("schedule")
        if case let .steps(steps) = training.length, schedule.warmupSteps >= steps {
            throw RecipeError.conflict(scheduleReader.location(of: "warmup_steps"), keyPath: "schedule.warmup_steps",
                                       message: "\(schedule.warmupSteps) warmup steps leave none of the \(steps) training steps")
        }
        if let shape = model.initShape, training.seqLen > shape.context {
            throw RecipeError.conflict(trainingReader.location(of: "seq_len"), keyPath: "training.seq_len",
                                       message: "\(training.seqLen) exceeds model.init.context \(shape.context)")
        }

        let directory = recipeFile.deletingLastPathComponent()
        canonicalText = Self.canonicalValue(summary: summary, model: model, data: data, adapters: adapters,
                                            optimizer: optimizer, schedule: schedule, training: training, eval: eval,
                                            safety: safety, output: output, root: directory).jsonText()
        sha256 = TensorDigest.sha256(bytes: Data(canonicalText.utf8))
    }

    /// The resolved recipe as a value tree (what `canonicalText` renders).
    public var canonicalValue: CanonicalValue {
        Self.canonicalValue(summary: summary, model: model, data: data, adapters: adapters, optimizer: optimizer,
                            schedule: schedule, training: training, eval: eval, safety: safety, output: output,
                            root: directory)
    }

    private static func canonicalValue(summary: String?, model: ModelSection, data: DataSection, adapters: AdapterSection,
                                       optimizer: OptimizerSection, schedule: ScheduleSection, training: TrainingSection,
                                       eval: EvalSection, safety: SafetySection, output: OutputSection,
                                       root: URL) -> CanonicalValue {
        .object([("format", .string(canonicalFormat)),
                 ("description", summary.map { .string($0) } ?? .null),
                 ("model", model.canonical(relativeTo: root)),
                 ("data", data.canonical(relativeTo: root)),
                 ("adapters", adapters.canonical),
                 ("optimizer", optimizer.canonical),
                 ("schedule", schedule.canonical),
                 ("training", training.canonical),
                 ("eval", eval.canonical),
                 ("safety", safety.canonical(relativeTo: root)),
                 ("output", output.canonical(relativeTo: root))])
    }

    /// Every path the run reads that does not exist, as `missingFile` errors in recipe order.
    /// A Hugging Face base folder must contain config.json.
    public func missingFiles() -> [RecipeError] {
        var problems: [RecipeError] = []
        func need(_ path: RecipePath?, _ keyPath: String, directory: Bool? = false) {
            guard let path, !path.exists(directory: directory) else { return }
            problems.append(.missingFile(path.location, keyPath: keyPath, path: path.written))
        }
        if let base = model.base {
            if let pinned = base.pinned, !base.exists(directory: false) {
                problems.append(.missingFile(base.location, keyPath: "model.base",
                                             path: "\(base.url.path) (the base model \(pinned.name) is not fetched yet; run scripts/setup)"))
            } else if base.exists(directory: true) {
                let config = RecipePath(written: base.written + "/config.json", location: base.location)
                need(config, "model.base")
            } else {
                need(base, "model.base")
            }
        }
        need(model.tokenizer, "model.tokenizer")
        for (i, file) in data.train.enumerated() { need(file.path, "data.train[\(i)]") }
        for (i, file) in data.eval.enumerated() { need(file.path, "data.eval[\(i)]") }
        need(safety.ssah.safetyData, "safety.ssah.safety_data")
        need(safety.ssah.utilityData, "safety.ssah.utility_data")
        need(safety.gate.reference, "safety.gate.reference", directory: nil)
        need(safety.gate.cleanData, "safety.gate.clean_data")
        need(safety.gate.probes, "safety.gate.probes")
        need(safety.gate.directionProbes, "safety.gate.direction_probes")
        need(safety.gate.directionData, "safety.gate.direction_data")
        need(safety.signal.calibration, "safety.signal.calibration")
        return problems
    }

    /// Throws the first missing file, if any.
    public func checkFiles() throws {
        if let first = missingFiles().first { throw first }
    }
}
