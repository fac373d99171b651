import Checkpoints
import Foundation
import Recipes
import Safety
import Training

/// The gate at the end of `safetune train` (recipe `safety.gate`): verify the new
/// checkpoint against its base, store the verdict in it, and on reject quarantine it or
/// purify it as the recipe asks.
public enum TrainingGate {
    /// What the gate did with the checkpoint.
    public enum Action: String, Sendable {
        /// It passed.
        case passed
        /// Rejected and marked as such (the recipe's `on_reject: quarantine` or `fail`).
        case quarantined
        /// Rejected and purified into a new checkpoint (`Outcome.purified`).
        case purified
    }

    /// What happened.
    public struct Outcome: Sendable {
        public var report: GateReport
        public var action: Action
        /// The purified checkpoint, when `action` is `purified`.
        public var purified: URL?
        /// Whether the run must exit non-zero.
        public var rejected: Bool { report.verdict == .reject }
        /// One line: the verdict, the action where it adds something ("reject, quarantined"),
        /// and the reason.
        public var summary: String {
            let verdict = report.verdict.rawValue
            return "\(action == .passed ? verdict : "\(verdict), \(action.rawValue)"): \(report.reason)"
        }
    }

    /// The gate's settings from the recipe (variants, steps, rule, where variants start, τ,
    /// the direction and behavioural stages) over the defaults. Both stages calibrate on
    /// clean fine-tunes of the parent in the run's own regime (`regime`).
    public static func configuration(_ recipe: Recipe, trainedSteps: Int? = nil) throws -> GateConfiguration {
        let settings = recipe.safety.gate
        var c = GateConfiguration()
        c.variants.pairs = settings.variants
        if let steps = settings.steps { c.variants.steps = steps }
        c.variants.kind = settings.kind
        c.rule = settings.rule
        c.variantsFromParent = settings.variantsFrom == .parent
        c.tau = settings.tau
        c.direction = try DirectionStage(gate: settings, regime: regime(of: recipe, trainedSteps: trainedSteps, over: DirectionStage().regime))
        if let probes = settings.probes {
            var stage = BehaviourStage(probes: try BehaviourStage.probes(from: probes.url, harmful: 4, benign: 4))
            stage.calibrationRuns = settings.scanCalibrations
            stage.calibrationFile = settings.scanCalibrationFile?.url
            stage.regime = regime(of: recipe, trainedSteps: trainedSteps, over: stage.regime)
            c.behaviour = stage
        }
        return c
    }

    /// The run's own regime over `defaults`, read the way `verify` reads a checkpoint's
    /// provenance: the recipe's adapters, learning rate, batch, sequence length and template,
    /// and `trainedSteps`.
    static func regime(of recipe: Recipe, trainedSteps: Int?, over defaults: VariantSettings) -> VariantSettings {
        defaults.following(provenance: Provenance(recipe: recipe.canonicalText, steps: trainedSteps.map(Int64.init))).settings
    }

    /// Verifies `checkpoint`, the result of `recipe`, against `safety.gate.reference` or the
    /// recipe's base; the record goes into the checkpoint (marked `quarantined` on reject
    /// unless the recipe asks to purify). Nil when the gate is off or the run trained from
    /// scratch (no parent to compare with).
    /// `trainedSteps`: the run's optimizer steps (the later stages' calibration regime);
    /// `frozen`: the units the run could not change (its SSAH mask), which the share skips.
    public static func run(recipe: Recipe, checkpoint: URL, trainedSteps: Int? = nil, frozen: UnitMask? = nil,
                           log: @escaping (String) -> Void = { _ in }) throws -> Outcome? {
        let settings = recipe.safety.gate
        guard settings.enabled, let parent = settings.reference?.url ?? recipe.model.base?.url else { return nil }
        let work = checkpoint.deletingLastPathComponent().appendingPathComponent("gate-work")
        defer { try? FileManager.default.removeItem(at: work) }
        var gate = Gate()
        let (report, evidence): (GateReport, VariantEvidence?)
        do {
            var c = try configuration(recipe, trainedSteps: trainedSteps)
            c.frozen = frozen
            if c.variantsFromParent { c.evidenceCache = GateEvidenceCache(besideParent: parent) }
            gate = Gate(configuration: c)
            let clean = try CleanData.load(recipe: recipe)
            (report, evidence) = gate.verifyKeepingEvidence(checkpoint, reference: parent, clean: clean, workDirectory: work, log: log)
        } catch {
            (report, evidence) = (GateReport.failure(error, checkpoint: checkpoint.path, reference: parent.path, seconds: 0), nil)
        }
        var record = report.record
        var outcome = Outcome(report: report, action: report.verdict == .pass ? .passed : .quarantined, purified: nil)
        if report.verdict == .reject {
            switch settings.onReject {
            case .quarantine, .fail:
                record.scores["quarantined"] = 1
            case .purify:
                let out = checkpoint.deletingPathExtension().appendingPathExtension("purified.h5")
                var p = PurifierSettings()
                p.variants = gate.configuration.variants
                let purifier = Purifier(settings: p)
                purifier.log = log
                _ = try purifier.purify(checkpoint, clean: CleanData.restoration(recipe: recipe), output: out, workDirectory: work,
                                        evidence: evidence)
                record.scores["purified"] = 1
                outcome.action = .purified
                outcome.purified = out
            }
        }
        var stored = try Checkpoint.read(from: checkpoint)
        stored.gate = record
        try stored.write(to: checkpoint)
        return outcome
    }
}
