import Checkpoints
import Foundation
import Models
import Recipes
import Safety
import Training

/// The whole run a recipe describes: load the base, train, evaluate, write the
/// checkpoint and the report. The safety methods plug in here, around the trainer.
public final class RecipeRun {
    /// How to run.
    public struct Parameters: Sendable {
        public var trainer = Trainer.Parameters()
        public init() {}
    }

    /// The stages of a run, in order.
    public enum Stage: String, Sendable, CaseIterable {
        case loading, measuring, ssah, training, guardCalibration = "guard calibration", gate, drift
    }

    /// What a run reports as it goes.
    public enum Progress: Sendable, CustomStringConvertible {
        /// A stage started; `detail` says on what.
        case started(Stage, detail: String)
        case training(TrainingProgress)
        /// SSAH's mask is on the model (`computed`: the unit map was scored now, not read from the base).
        case ssah(UnitFreezer.Summary, computed: Bool)
        case guardCalibrated(GuardCalibration)
        case gate(TrainingGate.Outcome)
        case drift(UnitDrift)
        /// A line from inside a stage (the gate's variant fine-tunes).
        case note(Stage, String)

        /// One line for a log (training steps have their own display).
        public var description: String {
            switch self {
            case let .started(stage, detail): return detail.isEmpty ? stage.rawValue : "\(stage.rawValue): \(detail)"
            case let .training(event): return "training: \(event)"
            case let .ssah(summary, computed): return "SSAH: \(computed ? "computed" : "cached") unit map; \(summary)"
            case let .guardCalibrated(calibration): return calibration.summary
            case let .gate(outcome): return "BD-VAX gate: \(outcome.summary)"
            case let .drift(drift): return "SSAH: unit drift: \(drift.headline)"
            case let .note(stage, text): return "\(stage.rawValue): \(text)"
            }
        }
    }

    /// How a run ended.
    public struct Result: Sendable {
        public var summary: TrainingSummary
        /// Safety and utility before and after training (nil when `eval.suites` is empty or
        /// there is no evaluation file).
        public var before: SuiteMeasurement?
        public var after: SuiteMeasurement?
        public var outputDirectory: URL
        public var checkpoint: URL
        public var report: URL?
        /// The BD-VAX gate's outcome (nil when `safety.gate` is off or the run had no parent).
        public var gate: TrainingGate.Outcome?
        /// The trained head's guard calibration (nil without `safety.signal.calibration`).
        public var guardCalibration: GuardCalibration?
    }

    public let recipe: Recipe
    public let parameters: Parameters
    /// Examples of each set scored for an SSAH unit map (enough for stable variances, bounded time).
    static let unitMapExamples = 200

    public init(recipe: Recipe, parameters: Parameters = .init()) {
        self.recipe = recipe
        self.parameters = parameters
    }

    /// The SA-ESS objective when `safety.signal` is on: the base's own signal when its
    /// checkpoint has one, otherwise a fresh CLS token and head added to the model.
    static func prepareSignal(_ recipe: Recipe, base: ModelBundle) throws -> (ModelBundle, TrainingObjective) {
        let settings = recipe.safety.signal
        guard settings.enabled else { return (base, LanguageModelObjective()) }
        if let group = base.checkpoint.signal {
            let signal = try SafetySignal(group: group)
            try signal.validate(for: base.model)
            return (base, SignalObjective(signal: signal, lambda: Float(settings.lambda), maliciousWeight: Float(settings.maliciousWeight),
                                    answerProbes: settings.answerProbes))
        }
        guard let tokenizer = base.tokenizer else { throw ModelBundleError.tokenizerRequired(path: base.source.path) }
        let (model, grown, signal) = try SafetySignal.adding(
            to: base.model, tokenizer: tokenizer, clsToken: settings.clsToken, pattern: settings.pattern,
            seed: UInt64(recipe.training.seed), trainable: recipe.adapters.kind == .full)
        let bundle = base.replacing(model: model, tokenizer: grown)
        return (bundle, SignalObjective(signal: signal, lambda: Float(settings.lambda), maliciousWeight: Float(settings.maliciousWeight),
                                    answerProbes: settings.answerProbes))
    }

    /// The evaluation prompts: the first `data.eval` file, at most `eval.prompts` of each kind.
    static func suiteSet(_ recipe: Recipe) throws -> EvaluationSet? {
        guard !recipe.eval.suites.isEmpty, let file = recipe.data.eval.first else { return nil }
        let set = try EvaluationSet.load(contentsOf: file.path.url)
        return set.limited(to: recipe.eval.prompts > 0 ? recipe.eval.prompts : nil)
    }

    /// An HTML table of the suite numbers before and after training.
    static func suiteTable(before: SuiteMeasurement?, after: SuiteMeasurement) -> String {
        func cell(_ v: Double?) -> String { v.map { String(format: "%.1f %%", 100 * $0) } ?? "–" }
        let rows = after.metrics.enumerated().map { i, m in
            "<tr><th>\(m.0)</th><td>\(cell(before?.metrics[i].1))</td><td>\(cell(m.1))</td></tr>"
        }
        return "<table><tr><th>metric</th><th>before</th><th>after</th></tr>\(rows.joined())</table>"
    }

    /// Runs to the end, stage by stage; throws on any error (the checkpoint of the last
    /// completed save survives): load the base and the SA-ESS objective, measure safety and
    /// utility, apply SSAH's unit mask, train, calibrate the guard, measure again, run the
    /// BD-VAX gate, write the report.
    ///
    /// In a data-parallel run every process loads, applies SSAH and trains; the stages
    /// after training, and the measurement before it, run on rank 0 alone, and the other
    /// processes return when training ends (their result has no measurement, gate or report).
    public func run(progress: (Progress) -> Void = { _ in }) throws -> Result {
        progress(.started(.loading, detail: recipe.model.base?.written ?? "a fresh model"))
        let base = try recipe.loadBase()
        let baseHasSignal = base.checkpoint.signal != nil
        let (bundle, objective) = try Self.prepareSignal(recipe, base: base)
        let trainer = try Trainer(recipe: recipe, bundle: bundle, objective: objective, parameters: parameters.trainer)
        let signal = (objective as? SignalObjective)?.signal
        let suiteSet = try Self.suiteSet(recipe)
        // After training, the guard the base shipped with is consulted beside the trained head,
        // as `generate` and `eval` consult it on the checkpoint (GuardedDecoder.parent).
        var parentGuard: GuardedDecoder?
        func measure(_ when: String, guarded: Bool, keptBeside parent: URL? = nil) throws -> SuiteMeasurement? {
            guard let suiteSet else { return nil }
            let cache = try parent.flatMap {
                try MeasurementCache(parent: $0, set: suiteSet, suites: recipe.eval.suites.map(\.rawValue),
                                     template: trainer.encoder.template.style.rawValue, maxTokens: recipe.eval.maxTokens, guarded: guarded)
            }
            if let cache, let kept = cache.measurement() {
                progress(.started(.measuring, detail: "safety and utility \(when): the parent's, kept in \(cache.directory.lastPathComponent)"))
                return kept
            }
            progress(.started(.measuring, detail: "safety and utility \(when) (\(suiteSet.all.count) prompts)"))
            let measured = try SuiteMeasurement.measure(
                model: trainer.model, tokenizer: trainer.tokenizer, template: trainer.encoder.template,
                signal: guarded ? signal : nil, parentGuard: parentGuard, set: suiteSet, suites: recipe.eval.suites,
                maxTokens: recipe.eval.maxTokens)
            if let problem = cache?.store(measured) { progress(.note(.measuring, problem)) }
            return measured
        }
        let root = parameters.trainer.processes.isRoot
        // Before training the model computes its parent file's function (fresh LoRA adapters
        // add zero) unless a new signal grew its vocabulary or another tokenizer reads it, so
        // the measurement is the parent's and is kept beside it for the next run.
        let parentOnly = !(recipe.safety.signal.enabled && !baseHasSignal) && recipe.model.tokenizer == nil
        let before = parameters.trainer.resume || !root ? nil
            : try measure("before training", guarded: baseHasSignal, keptBeside: parentOnly ? recipe.model.base?.url : nil)
        // Training moves the head, so a threshold calibrated for the base's head no longer holds.
        signal?.calibration = nil
        let ssah = try applySSAH(to: trainer, progress: progress)
        var guardCalibration: GuardCalibration?
        let summary = try trainer.run(progress: { progress(.training($0)) },
                                      finishing: {
                                          if signal != nil, baseHasSignal, let url = recipe.model.base?.url {
                                              parentGuard = try GuardedDecoder.calibratedGuard(file: url, options: .init())
                                          }
                                          guardCalibration = try calibrateGuard(signal, parent: parentGuard, of: trainer, progress: progress)
                                      })
        let checkpoint = URL(fileURLWithPath: summary.checkpoint)
        guard root else {
            return Result(summary: summary, before: nil, after: nil, outputDirectory: trainer.outputDirectory, checkpoint: checkpoint,
                          report: nil, gate: nil, guardCalibration: nil)
        }
        let finished = summary.steps == trainer.plan.totalSteps
        let after = finished ? try measure("after training", guarded: true) : nil
        let gate = finished ? try runGate(on: checkpoint, steps: summary.steps, frozen: ssah?.frozen, progress: progress) : nil
        let report = try writeReport(summary: summary, checkpoint: checkpoint, finished: finished, trainer: trainer,
                                     before: before, after: after, ssah: ssah, gate: gate, progress: progress)
        return Result(summary: summary, before: before, after: after, outputDirectory: trainer.outputDirectory,
                      checkpoint: checkpoint, report: report, gate: gate, guardCalibration: guardCalibration)
    }

    /// What SSAH did before training: the parent's unit map and the units the run could not change.
    struct SSAHStage {
        let map: UnitMap
        /// Nil when the mask freezes nothing.
        let frozen: UnitMask?
    }

    /// SSAH (`safety.ssah`): the base's unit map (cached in its checkpoint, else scored),
    /// and the freeze/route mask applied to the trainer's model; nil when SSAH is off.
    private func applySSAH(to trainer: Trainer, progress: (Progress) -> Void) throws -> SSAHStage? {
        let ssah = recipe.safety.ssah
        guard ssah.enabled else { return nil }
        progress(.started(.ssah, detail: "unit map; freeze \(ssah.freeze), route \(ssah.route.rawValue)"))
        let builder = UnitMapBuilder(sizes: ssah.sizes, limit: Self.unitMapExamples)
        let (map, computed) = try builder.map(
            for: &trainer.bundle.checkpoint, source: trainer.bundle.source.path, model: trainer.model,
            encoder: trainer.encoder, safety: ssah.safetyData?.url, utility: ssah.utilityData?.url)
        let mask = UnitMask(map: map, freeze: ssah.freeze, route: ssah.route)
        let frozen = try UnitFreezer.apply(mask, to: trainer.model)
        progress(.ssah(frozen, computed: computed))
        return SSAHStage(map: map, frozen: mask.isEmpty ? nil : mask)
    }

    /// SA-ESS (`safety.signal.calibration`): the trained head's guard threshold, measured on
    /// harmless prompts and kept in the signal, so the final checkpoint stores it; nil
    /// without a signal or calibration file.
    private func calibrateGuard(_ signal: SafetySignal?, parent: GuardedDecoder?, of trainer: Trainer,
                                progress: (Progress) -> Void) throws -> GuardCalibration? {
        guard let signal, let prompts = recipe.safety.signal.calibration else { return nil }
        progress(.started(.guardCalibration, detail: prompts.written))
        let calibration = try GuardCalibration.measure(
            model: trainer.model, tokenizer: trainer.tokenizer, template: trainer.encoder.template, signal: signal,
            harmless: EvaluationSet.load(contentsOf: prompts.url).harmless.map(\.prompt),
            budget: recipe.safety.signal.overRefusalBudget, maxTokens: recipe.eval.maxTokens, parent: parent)
        signal.calibration = calibration
        progress(.guardCalibrated(calibration))
        return calibration
    }

    /// BD-VAX (`safety.gate`): the verdict on the trained checkpoint, stored in it; nil when
    /// the gate is off or the run has no parent.
    private func runGate(on checkpoint: URL, steps: Int, frozen: UnitMask?, progress: (Progress) -> Void) throws -> TrainingGate.Outcome? {
        guard recipe.safety.gate.enabled else { return nil }
        progress(.started(.gate, detail: ""))
        let gate = try withoutActuallyEscaping(progress) { report in
            try TrainingGate.run(recipe: recipe, checkpoint: checkpoint, trainedSteps: steps, frozen: frozen) {
                report(.note(.gate, $0))
            }
        }
        if let gate { progress(.gate(gate)) }
        return gate
    }

    /// `report.html` (unless `output.report` is off): the run's numbers, the loss curve, the
    /// safety and utility table, SSAH's unit map and drift, the gate's verdict.
    private func writeReport(summary: TrainingSummary, checkpoint: URL, finished: Bool, trainer: Trainer,
                             before: SuiteMeasurement?, after: SuiteMeasurement?, ssah: SSAHStage?,
                             gate: TrainingGate.Outcome?, progress: (Progress) -> Void) throws -> URL? {
        guard recipe.output.report else { return nil }
        var report = RunReport(title: "SafeTune run: \(recipe.output.name)")
        report.summary = [
            ("recipe", recipe.files.first?.lastPathComponent ?? "recipe"), ("recipe sha256", recipe.sha256),
            ("steps", "\(summary.steps)"), ("last step's loss", String(format: "%.4g", summary.finalLoss)),
            ("eval loss", summary.evalLoss.map { String(format: "%.4f", $0) } ?? "–"),
            ("tokens/s", String(format: "%.0f", summary.tokensPerSecond)),
            ("seconds", String(format: "%.1f", summary.seconds)), ("checkpoint", checkpoint.lastPathComponent),
        ]
        report.loadMetrics(from: trainer.outputDirectory.appendingPathComponent("metrics.jsonl"))
        var sections: [RunReport.Section] = []
        if let ssah {
            sections.append(RunReport.Section(title: "SSAH unit map (parent)",
                                              html: "<pre>\(RunReport.escape(ssah.map.summaryTable))</pre>" + UnitMapSVG.render(ssah.map)))
        }
        if let gate { sections.append(RunReport.Section(title: "BD-VAX gate", html: gate.report.html())) }
        if let after {
            sections.append(RunReport.Section(title: "Safety and utility", html: Self.suiteTable(before: before, after: after)))
        }
        // Drift needs both scoring sets (a map cached in the base may come without them).
        let settings = recipe.safety.ssah
        if let ssah, let safety = settings.safetyData?.url, let utility = settings.utilityData?.url, finished {
            progress(.started(.drift, detail: "scoring the fine-tuned model's units"))
            let child = try ModelBundle.load(checkpoint)
            let builder = UnitMapBuilder(sizes: ssah.map.sizes, limit: Self.unitMapExamples)
            let (childMap, _) = try builder.build(model: child.model, encoder: trainer.encoder, safety: safety, utility: utility)
            let drift = try UnitDrift(parent: ssah.map, child: childMap)
            progress(.drift(drift))
            sections.append(RunReport.Section(title: "SSAH unit drift (parent → fine-tuned)",
                                              html: "<pre>\(RunReport.escape(drift.table))</pre>"))
        }
        report.sections = sections
        let url = trainer.outputDirectory.appendingPathComponent("report.html")
        try report.write(to: url)
        return url
    }
}
