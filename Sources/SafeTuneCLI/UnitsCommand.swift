import ArgumentParser
import Checkpoints
import Foundation
import Models
import Safety
import Tokenizers
import Training

/// `safetune units`: the SSAH unit map of a model (score, classify, store, validate by
/// pruning) and `safetune units --compare PARENT CHILD` (how classes moved in a fine-tune).
struct UnitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "units",
        abstract: "Find safety-critical, utility-critical, complex and redundant units (SSAH); compare two maps.",
        discussion: """
            Scores every MLP neuron and attention head on a safety set (harmful prompts with refusals) and a \
            utility set (benign tasks): I = Var(input of down/o_proj) · ‖column‖², normalised by the layer mean. \
            Labelled files are filtered (safety keeps malicious lines, utility keeps benign ones), so a corpus \
            val.jsonl can serve as both. Without --safety/--utility the checkpoint's stored map is shown.
            """)

    @Argument(help: "A SafeTune checkpoint (.h5) or Hugging Face folder; with --compare, PARENT and CHILD checkpoints.")
    var models: [String]

    @Option(help: "Safety set (JSONL: prompt/completion, messages or text).")
    var safety: String?

    @Option(help: "Utility set (JSONL).")
    var utility: String?

    @Option(name: .shortAndLong, help: "Write a checkpoint with the unit map in /units (and OUT.svg next to it).")
    var output: String?

    @Option(help: "Class sizes as fractions of units, e.g. scu=0.015,ucu=0.10,ru=0.15.")
    var sizes: String?

    @Option(help: "Use at most N examples of each set (and of each evaluation set with --validate).")
    var limit: Int?

    @Option(help: "Sequences per forward pass while scoring.")
    var batchSize: Int = 8

    @Option(help: "Chat template for prompt/completion data: llama2, chatml, instruction (recipes: plain), or auto (from the tokenizer).")
    var template: String = "auto"

    @Flag(name: .customLong("validate"), help: "Prune each class in turn and report the change in ASR and utility.")
    var validateByPruning = false

    @Option(help: "Evaluation set for --validate (corpus JSONL with harmful and skill prompts; default: the utility set).")
    var eval: String?

    @Option(help: "Most tokens per answer during --validate.")
    var maxTokens: Int = 32

    @Flag(help: "Compare the unit maps stored in PARENT and CHILD.")
    var compare = false

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        if compare {
            guard models.count == 2 else { throw ValidationError("--compare needs PARENT and CHILD checkpoints") }
            if safety != nil || utility != nil || output != nil || validateByPruning {
                throw ValidationError("--compare takes only PARENT, CHILD and --json")
            }
        } else if models.count != 1 {
            throw ValidationError("expected one checkpoint or model folder, got \(models.count)")
        }
        if (safety == nil) != (utility == nil) { throw ValidationError("--safety and --utility go together") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if validateByPruning, eval == nil, utility == nil { throw ValidationError("--validate needs --eval (or --utility) with harmful and skill prompts") }
    }

    func run() throws {
        try CommandFailure.guarding {
            if compare { try runCompare() } else { try runMap() }
        }
    }

    // MARK: Map

    private func runMap() throws {
        let path = models[0]
        let (stored, loaded) = try Self.loadCheckpoint(path)
        var checkpoint = loaded
        let model = try TransformerModel(config: checkpoint.config, weights: checkpoint.weights, trainable: false)
        if let group = checkpoint.adapters {
            // Score the fine-tuned function: a LoRA child's units differ from its base's only through the adapters.
            try LoRAGroup.attach(group, to: model, source: path)
            LoRA.merge(model)
        }
        let requested = try sizes.map { (text) throws(UnitMapError) in try UnitSizes(parsing: text) }

        var map: UnitMap
        var attributes: [String: AttributeValue] = checkpoint.units?.attributes ?? [:]
        if let safety, let utility {
            guard let tokenizer = try checkpoint.tokenizer(source: path) else { throw UnitsCommandError.noTokenizer(path) }
            let encoder = ExampleEncoder(tokenizer: tokenizer, template: try ChatTemplate.named(template, tokenizer: tokenizer))
            let builder = UnitMapBuilder(sizes: requested ?? UnitSizes(), limit: limit, batchSize: batchSize)
            note("scoring units on \(safety) and \(utility)")
            (map, attributes) = try builder.build(model: model, encoder: encoder, safety: URL(fileURLWithPath: safety),
                                                  utility: URL(fileURLWithPath: utility))
            checkpoint.directions = try directions(model: model, tokenizer: tokenizer, template: encoder.template, checkpoint: checkpoint,
                                                   path: path, safety: safety, utility: utility)
        } else if let stored = checkpoint.units {
            map = try UnitMap(checkpoint: stored, config: checkpoint.config, source: path)
            if let requested { map = try map.reclassified(sizes: requested) }
        } else {
            throw UnitsCommandError.noMap(path)
        }

        var report: [String: Any] = ["model": path, "map": map.jsonObject]
        var text = map.summaryTable
        if validateByPruning, let set = eval ?? utility {
            let evaluate = try outcome(set: set, checkpoint: checkpoint, path: path)
            note("validating: evaluating the model, then with each class pruned")
            let validation = try UnitValidation(model: model, map: map, evaluate: evaluate)
            report["validation"] = validation.jsonObject
            text += "\n" + validation.table
        }
        if let output {
            // An adapter-only input stays adapter-only: only the sections computed here change.
            var written = stored.isAdapterOnly ? stored : checkpoint
            written.units = map.checkpointUnits(attributes: attributes)
            written.directions = checkpoint.directions
            let url = URL(fileURLWithPath: output)
            try written.write(to: url)
            let svg = url.deletingPathExtension().appendingPathExtension("svg")
            try Data(UnitMapSVG.render(map, title: "SSAH unit map: \(url.lastPathComponent)").utf8).write(to: svg, options: .atomic)
            report["output"] = output
            report["svg"] = svg.path
            text += "wrote \(output) and \(svg.lastPathComponent)\n"
        }
        if json { try printJSON(report) } else { print(text, terminator: "") }
    }

    // MARK: Compare

    private func runCompare() throws {
        let (parentPath, childPath) = (models[0], models[1])
        let parent = try Self.loadCheckpoint(parentPath).full, child = try Self.loadCheckpoint(childPath).full
        guard let p = parent.units else { throw UnitsCommandError.noMap(parentPath) }
        guard let c = child.units else { throw UnitsCommandError.noMap(childPath) }
        let drift = try UnitDrift(parent: try UnitMap(checkpoint: p, config: parent.config, source: parentPath),
                                  child: try UnitMap(checkpoint: c, config: child.config, source: childPath))
        if json {
            var object = drift.jsonObject
            object["parent"] = parentPath
            object["child"] = childPath
            try printJSON(object)
        } else {
            print("unit classes, \(parentPath) -> \(childPath)\n" + drift.table, terminator: "")
        }
    }

    // MARK: Helpers

    /// The model's safety directions (the gate's direction stage reads a parent's) on the
    /// first harmful prompts of the safety set and harmless prompts of the utility set;
    /// nil, with a note, when the sets are not labelled that way.
    private func directions(model: TransformerModel, tokenizer: Tokenizer, template: ChatTemplate, checkpoint: Checkpoint,
                            path: String, safety: String, utility: String) throws -> TensorGroup? {
        let count = min(limit ?? DirectionStage.probesPerKind, DirectionStage.probesPerKind)
        guard case let .prompts(harmful, harmless)? = try? DirectionStage.probes(
            harmfulFrom: URL(fileURLWithPath: safety), harmlessFrom: URL(fileURLWithPath: utility), count: count) else {
            note("no safety directions stored: they need prompts labelled malicious in the safety set and benign ones without answers in the utility set")
            return nil
        }
        let bundle = ModelBundle(model: model, tokenizer: tokenizer, checkpoint: checkpoint, source: URL(fileURLWithPath: path))
        let directions = try SafetyDirections(bundle: bundle, template: template, harmful: harmful, harmless: harmless)
        note("safety directions on \(harmful.count) harmful and \(harmless.count) harmless prompts: separation per block "
             + directions.separation.map { String(format: "%.2f", $0) }.joined(separator: " "))
        return directions.group(attributes: ["harmful_prompts": .int(Int64(harmful.count)), "harmless_prompts": .int(Int64(harmless.count)),
                                             "template": .string(template.style.rawValue)])
    }

    /// Measures a model on `set`'s harmful prompts (direct-request ASR) and skill prompts
    /// (accuracy), at most `--limit` of each, with greedy answers of `--max-tokens` tokens.
    private func outcome(set: String, checkpoint: Checkpoint, path: String) throws -> (TransformerModel) throws -> UnitValidation.Outcome {
        guard let tokenizer = try checkpoint.tokenizer(source: path) else { throw UnitsCommandError.noTokenizer(path) }
        let chat = try ChatTemplate.named(template, tokenizer: tokenizer)
        var prompts = try EvaluationSet.load(contentsOf: URL(fileURLWithPath: set)).limited(to: limit)
        prompts.harmless = []
        guard !prompts.harmful.isEmpty, !prompts.skills.isEmpty else { throw UnitsCommandError.evaluationSet(set) }
        let options = EvaluationOptions(maxTokens: maxTokens, keepResponses: false)
        return { model in
            let report = try Evaluator(model: model, tokenizer: tokenizer, template: chat, options: options).evaluate(prompts)
            return UnitValidation.Outcome(asr: report.attackSuccess("direct")?.value ?? 0, utility: report.skillAccuracy?.value ?? 0)
        }
    }

    /// A `.h5` checkpoint or a Hugging Face folder as stored, and with full weights (an
    /// adapter-only checkpoint of a pinned base gets the cached base attached).
    static func loadCheckpoint(_ path: String) throws -> (stored: Checkpoint, full: Checkpoint) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw UnitsCommandError.missing(path) }
        let url = URL(fileURLWithPath: path)
        let checkpoint = isDirectory.boolValue ? try HuggingFaceModel.importModel(from: url) : try Checkpoint.read(from: url)
        return (checkpoint, checkpoint.isAdapterOnly ? try ModelBundle.attachingPinnedBase(checkpoint, source: url) : checkpoint)
    }

    private func note(_ message: String) {
        if !json { FileHandle.standardError.write(Data((message + "\n").utf8)) }
    }
}

/// User errors of `safetune units`, one line each.
enum UnitsCommandError: Error, CustomStringConvertible {
    case missing(String)
    case noTokenizer(String)
    case noMap(String)
    case evaluationSet(String)

    var description: String {
        switch self {
        case let .missing(p): return "\(p): no such checkpoint or model folder"
        case let .noTokenizer(p): return "\(p): no tokenizer.json; scoring units needs one"
        case let .noMap(p): return "\(p): no unit map stored; give --safety and --utility to compute one"
        case let .evaluationSet(p): return "\(p): --validate needs both harmful and skill prompts (a corpus val.jsonl)"
        }
    }
}
