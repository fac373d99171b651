import Foundation
import Models
import Recipes
import Safety
import Tokenizers
import Training

/// Safety and utility of a model on the recipe's evaluation file: what a run reports
/// before training and after it.
///
/// Safety is the refusal rate on harmful prompts (direct requests, plain decoding), the
/// prefilling attack's success rate (plain, and guarded by the SA-ESS signal when the model
/// has one), and the over-refusal rate on harmless prompts (plain, and guarded). Utility is skill accuracy.
/// The judge is the refusal-keyword list, never the model's own classifier.
public struct SuiteMeasurement: Sendable, Codable {
    public var report: EvaluationReport

    /// Measures `model` on `set` (already limited to the recipe's `eval.prompts`); the guard
    /// consults `parentGuard` too, when given (`GuardedDecoder.parent`).
    public static func measure(model: TransformerModel, tokenizer: Tokenizer, template: ChatTemplate,
                               signal: SafetySignal?, parentGuard: GuardedDecoder? = nil, set: EvaluationSet,
                               suites: [EvalSection.Suite], maxTokens: Int) throws -> SuiteMeasurement {
        let options = EvaluationOptions(maxTokens: maxTokens, keepResponses: false)
        let plain = Evaluator(model: model, tokenizer: tokenizer, template: template, options: options)
        let wantSafety = suites.contains(.safety), wantUtility = suites.contains(.utility)
        let subset = EvaluationSet((wantSafety ? set.harmful + set.harmless : []) + (wantUtility ? set.skills : []))
        var report = try plain.evaluate(subset)
        if wantSafety, !set.harmful.isEmpty {
            let harmful = EvaluationSet(set.harmful)
            report = report.merged(with: try AttackRunner(evaluator: plain).run([.prefill], on: harmful))
            if let signal {
                let guarded = Evaluator(model: model, tokenizer: tokenizer, template: template, options: options,
                                        decoder: try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, parent: parentGuard))
                report = report.merged(with: try AttackRunner(evaluator: guarded).run([.direct, .prefill], on: harmful))
                if !set.harmless.isEmpty { report.overRefusalGuarded = try guarded.evaluate(EvaluationSet(set.harmless)).overRefusal }
            }
        }
        return SuiteMeasurement(report: report)
    }

    /// Harmful prompts refused under plain decoding.
    public var refusal: Double? { report.harmfulRefusal?.value }
    /// Prefilling-attack success, plain decoding.
    public var prefillASR: Double? { report.attackSuccess("prefill")?.value }
    /// Prefilling-attack success with the safety signal guarding decoding.
    public var guardedPrefillASR: Double? { report.attackSuccess("prefill", guarded: true)?.value }
    /// Harmless prompts refused.
    public var overRefusal: Double? { report.overRefusal?.value }
    /// Harmless prompts refused with the safety signal guarding decoding.
    public var guardedOverRefusal: Double? { report.overRefusalGuarded?.value }
    /// Skill answers that contain the expected answer.
    public var skillAccuracy: Double? { report.skillAccuracy?.value }

    /// Named numbers for logs, JSON and the summary table.
    public var metrics: [(String, Double?)] {
        [("refusal", refusal), ("prefill_asr", prefillASR), ("prefill_asr_guarded", guardedPrefillASR),
         ("over_refusal", overRefusal), ("over_refusal_guarded", guardedOverRefusal), ("skill_accuracy", skillAccuracy)]
    }
}
