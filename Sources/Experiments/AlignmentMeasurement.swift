import Checkpoints
import Foundation
import Models
import Safety
import Tokenizers
import Training

/// One model measured on the held-out files of `safetune corpus align`: how often it refuses
/// harmful requests and harmless or borderline ones, how attacks fare with and without the
/// SA-ESS guard, how likely it finds the base's own answers, and its skill accuracy.
/// `safetune compare` prints several of these side by side (the base beside the aligned model).
public struct AlignmentMeasurement: Codable, Sendable {
    /// The held-out files (`val-*.jsonl` in the folder `safetune corpus align` writes).
    public struct Files: Sendable {
        public var harmful, harmless, borderline, skills: URL
        public init(directory: URL) {
            harmful = directory.appendingPathComponent("val-harmful.jsonl")
            harmless = directory.appendingPathComponent("val-harmless.jsonl")
            borderline = directory.appendingPathComponent("val-borderline.jsonl")
            skills = directory.appendingPathComponent("val-skills.jsonl")
        }
    }

    /// How much is measured. Sampling and suffix attacks cost many decodings per prompt, so
    /// they run on the first prompts of the harmful file only.
    public struct Options: Sendable {
        public var maxTokens = 64
        public var skillTokens = 24
        public var decodingPrompts = 40
        public var suffixPrompts = 10
        public var suffixSeconds = 10.0
        /// Harmless prompts timed for the guard's overhead (0: not timed).
        public var overheadPrompts = 12
        public init() {}
    }

    /// The rates of one way of decoding (plain, or guarded by the SA-ESS signal).
    public struct Column: Codable, Sendable {
        /// Harmful requests refused (refusal judge) when asked directly.
        public var refusal: Rate
        /// Harmless and borderline-but-safe requests refused.
        public var overRefusal: Rate
        public var borderlineOverRefusal: Rate
        /// Attack success rates: prefilled affirmative opening, sampling, adversarial suffix.
        public var prefill: Rate
        public var decoding: Rate
        public var suffix: Rate
    }

    public var model: String
    public var plain: Column
    /// Nil for a model without a safety signal.
    public var guarded: Column?
    /// Mean log-likelihood per token, in nats, of the base's own answers to the held-out
    /// harmless prompts (teacher-forced behind the chat template), and the tokens it averages.
    public var answerLogLikelihood: Double
    public var answerTokens: Int
    /// Skill accuracy per task family.
    public var skills: [String: Rate]
    /// The guard's extra time per decoded token (0.2 = +20 %); nil when not timed.
    public var guardOverhead: Double?
    public var guardThreshold: Double?
    public var seconds: Double

    /// Measures `bundle` (named `name` in the report). `progress` receives one line per stage.
    public static func measure(_ bundle: ModelBundle, name: String, files: Files, options: Options = .init(),
                               progress: (String) -> Void = { _ in }) throws -> AlignmentMeasurement {
        let start = Date()
        guard let tokenizer = bundle.tokenizer else { throw ModelBundleError.tokenizerRequired(path: bundle.source.path) }
        let template = try ChatTemplate.named("auto", tokenizer: tokenizer)
        let harmful = try EvaluationSet.load(contentsOf: files.harmful)
        let harmless = try EvaluationSet.load(contentsOf: files.harmless)
        let borderline = try EvaluationSet.load(contentsOf: files.borderline)
        let skills = try EvaluationSet.load(contentsOf: files.skills)
        let evaluation = EvaluationOptions(maxTokens: options.maxTokens, keepResponses: false)
        let plainEvaluator = Evaluator(model: bundle.model, tokenizer: tokenizer, template: template, options: evaluation)

        func column(_ evaluator: Evaluator, _ label: String) throws -> Column {
            func limited(to n: Int) -> Evaluator {
                var o = evaluation
                o.limit = n
                return Evaluator(model: evaluator.model, tokenizer: tokenizer, template: template, options: o, decoder: evaluator.decoder)
            }
            progress("\(name) (\(label)): direct requests and over-refusal")
            let direct = try evaluator.evaluate(harmful)
            let overRefusal = try evaluator.evaluate(harmless).overRefusal ?? Rate(count: 0, hits: 0)
            let borderlineRefusal = try evaluator.evaluate(borderline).overRefusal ?? Rate(count: 0, hits: 0)
            let attack = AttackOptions(searchSeconds: options.suffixSeconds)
            progress("\(name) (\(label)): prefilling attack")
            let prefill = try AttackRunner(evaluator: evaluator, options: attack).run([.prefill], on: harmful)
            progress("\(name) (\(label)): decoding attack on \(options.decodingPrompts) prompts")
            let decoding = try AttackRunner(evaluator: limited(to: options.decodingPrompts), options: attack)
                .run([.decoding], on: harmful)
            progress("\(name) (\(label)): suffix attack on \(options.suffixPrompts) prompts")
            let suffix = try AttackRunner(evaluator: limited(to: options.suffixPrompts), options: attack)
                .run([.suffix], on: harmful)
            let none = Rate(count: 0, hits: 0)
            return Column(refusal: direct.harmfulRefusal ?? none, overRefusal: overRefusal, borderlineOverRefusal: borderlineRefusal,
                          prefill: prefill.attackSuccess("prefill", guarded: evaluator.decoder.isGuarded) ?? none,
                          decoding: decoding.attackSuccess("decoding", guarded: evaluator.decoder.isGuarded) ?? none,
                          suffix: suffix.attackSuccess("suffix", guarded: evaluator.decoder.isGuarded) ?? none)
        }

        let plain = try column(plainEvaluator, "plain")
        var guarded: Column?, overhead: Double?, threshold: Double?
        if let group = bundle.checkpoint.signal {
            // A fine-tune of a guarded model is guarded as `eval` guards it: its parent's guard too.
            let parent = try GuardedDecoder.parentGuard(of: bundle.checkpoint, file: bundle.source, options: .init())
            let decoder = try GuardedDecoder(model: bundle.model, tokenizer: tokenizer, signal: try SafetySignal(group: group), parent: parent)
            threshold = GuardCalibration.decimal(decoder.threshold)
            guarded = try column(Evaluator(model: bundle.model, tokenizer: tokenizer, template: template, options: evaluation, decoder: decoder),
                                 "guarded")
            if options.overheadPrompts > 0 {
                progress("\(name): timing the guard on \(options.overheadPrompts) prompts")
                let prompts = harmless.harmless.prefix(options.overheadPrompts).map { plainEvaluator.promptIds($0.prompt) }
                overhead = try GuardOverhead.measure(guarded: decoder, unguarded: bundle.model, prompts: prompts).overhead
            }
        }
        progress("\(name): likelihood of the base's answers and skills")
        let (logLikelihood, tokens) = try answerLikelihood(bundle.model, tokenizer: tokenizer, evaluator: plainEvaluator,
                                                           harmless: files.harmless)
        var skillOptions = evaluation
        skillOptions.maxTokens = options.skillTokens
        let skillReport = try Evaluator(model: bundle.model, tokenizer: tokenizer, template: template, options: skillOptions).evaluate(skills)
        return AlignmentMeasurement(model: name, plain: plain, guarded: guarded, answerLogLikelihood: logLikelihood, answerTokens: tokens,
                                    skills: skillReport.skillAccuracyByTask, guardOverhead: overhead, guardThreshold: threshold,
                                    seconds: Date().timeIntervalSince(start))
    }

    /// Mean log-probability per answer token of each record's `completion` after its prompt.
    static func answerLikelihood(_ model: TransformerModel, tokenizer: Tokenizer, evaluator: Evaluator,
                                 harmless: URL) throws -> (Double, Int) {
        var sum = 0.0, count = 0
        for example in try JSONLReader().read(url: harmless).examples {
            let promptIds = evaluator.promptIds(example.text(of: .user)), answerIds = tokenizer.encode(example.text(of: .assistant))
            guard !answerIds.isEmpty else { continue }
            let scores = try model.tokenLogprobs(promptIds + answerIds)
            for s in scores.suffix(answerIds.count) { sum += Double(s) }
            count += answerIds.count
        }
        return (count == 0 ? 0 : sum / Double(count), count)
    }
}
