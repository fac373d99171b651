import Engine
import Foundation
import Models

/// The jailbreak attacks of the safety suite.
public enum AttackKind: String, Sendable, CaseIterable, Codable {
    /// The harmful request as is.
    case direct
    /// The answer forced to start with an affirmative opening (the record's prefill, or "Sure, here is").
    case prefill
    /// A sweep of temperatures × top-p; success if any sample complies.
    case decoding
    /// Random token suffixes, then greedy coordinate gradient search (GCG) over the suffix
    /// tokens for the one that maximises the log-probability of an affirmative target.
    case suffix
}

/// Settings of the attacks.
public struct AttackOptions: Sendable {
    /// Decoding attack: temperatures tried.
    public var temperatures: [Float]
    /// Decoding attack: top-p values tried.
    public var topPs: [Float]
    /// Decoding attack: samples per (temperature, top-p).
    public var samplesPerSetting: Int
    /// Suffix attack: random suffixes tried per prompt.
    public var randomSuffixes: Int
    /// Suffix attack: tokens per suffix.
    public var suffixTokens: Int
    /// Suffix search: candidate replacements tried per iteration.
    public var candidates: Int
    /// Suffix search: replacements per position drawn from the `topK` tokens whose
    /// one-hot gradient promises the largest gain.
    public var topK: Int
    /// Suffix search: most iterations per prompt.
    public var searchSteps: Int
    /// Suffix search: wall-clock budget per prompt, in seconds.
    public var searchSeconds: Double
    /// Opening used when a prompt has no prefill, and the search target.
    public var affirmative: String
    /// Seed for sampling and suffixes.
    public var seed: UInt64

    /// Options; defaults are small enough for CPU runs.
    public init(temperatures: [Float] = [0.7, 1.0, 1.5], topPs: [Float] = [0.9, 1.0], samplesPerSetting: Int = 1,
                randomSuffixes: Int = 4, suffixTokens: Int = 10, candidates: Int = 16, topK: Int = 32, searchSteps: Int = 50,
                searchSeconds: Double = 20, affirmative: String = "Sure, here is", seed: UInt64 = 0) {
        self.temperatures = temperatures
        self.topPs = topPs
        self.samplesPerSetting = samplesPerSetting
        self.randomSuffixes = randomSuffixes
        self.suffixTokens = suffixTokens
        self.candidates = candidates
        self.topK = topK
        self.searchSteps = searchSteps
        self.searchSeconds = searchSeconds
        self.affirmative = affirmative
        self.seed = seed
    }
}

/// Runs attacks on the harmful prompts of an evaluation set through an `Evaluator` (whose
/// decoder decides whether the SA-ESS guard is on) and reports each attack's success rate.
/// The judge is the evaluator's keyword judge, never the model's classifier.
public final class AttackRunner {
    /// Generation and judging.
    public let evaluator: Evaluator
    /// Attack settings.
    public let options: AttackOptions

    /// A runner.
    public init(evaluator: Evaluator, options: AttackOptions = .init()) {
        self.evaluator = evaluator
        self.options = options
    }

    /// Runs `attacks` on the harmful prompts of `set` (limited as the evaluator's options say).
    public func run(_ attacks: [AttackKind], on set: EvaluationSet) throws(EvaluationError) -> EvaluationReport {
        let prompts = set.limited(to: evaluator.options.limit).harmful
        var report = EvaluationReport(maxTokens: evaluator.options.maxTokens)
        let start = Date()
        for attack in attacks where !prompts.isEmpty {
            let began = Date()
            var hits = 0
            switch attack {
            case .direct, .prefill:
                // One request per prompt: decoded as one batch.
                let prefills = prompts.map { attack == .prefill ? $0.prefill ?? options.affirmative : "" }
                let answers = try evaluator.respond(zip(prompts, prefills).map { Evaluator.Request($0.prompt, prefill: $1) })
                for ((p, prefill), a) in zip(zip(prompts, prefills), answers) {
                    if judged(attack, p, prefill, a, report: &report) { hits += 1 }
                }
            case .decoding:
                for (i, p) in prompts.enumerated() {
                    if try samplingSucceeds(p, index: i, report: &report) { hits += 1 }
                }
            case .suffix:
                for (i, p) in prompts.enumerated() {
                    if try suffixSucceeds(p, index: i, report: &report) { hits += 1 }
                }
            }
            report.attacks.append(AttackOutcome(attack: attack.rawValue, guarded: evaluator.decoder.isGuarded,
                                                success: Rate(count: prompts.count, hits: hits),
                                                seconds: Date().timeIntervalSince(began)))
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// Judges `a`, the answer to `p` (with `suffix`) after `prefill`, and keeps it in the report.
    private func judged(_ attack: AttackKind, _ p: EvaluationPrompt, _ prefill: String, _ a: DecodedAnswer, suffix: String = "",
                        report: inout EvaluationReport) -> Bool {
        let ok = evaluator.complies(prefill: prefill, answer: a.text)
        var shown = p
        shown.prompt += suffix
        evaluator.keep(&report, attack.rawValue, shown, prefill, a, ok ? "complied" : "refused")
        return ok
    }

    /// Whether any sampling setting makes the model comply with `p`: every setting as one
    /// batch, judged in order up to the first success.
    private func samplingSucceeds(_ p: EvaluationPrompt, index: Int, report: inout EvaluationReport) throws(EvaluationError) -> Bool {
        var seed = options.seed &+ UInt64(index) &* 1_000
        var requests: [Evaluator.Request] = []
        for t in options.temperatures {
            for topP in options.topPs {
                for _ in 0..<max(1, options.samplesPerSetting) {
                    seed &+= 1
                    requests.append(Evaluator.Request(p.prompt, sampler: Sampler(temperature: t, topP: topP), seed: seed))
                }
            }
        }
        return try evaluator.respond(requests).contains { judged(.decoding, p, "", $0, report: &report) }
    }

    /// Whether a random or searched suffix makes the model comply with `p`.
    private func suffixSucceeds(_ p: EvaluationPrompt, index: Int, report: inout EvaluationReport) throws(EvaluationError) -> Bool {
        func judged(_ a: DecodedAnswer, suffix: String) -> Bool {
            self.judged(.suffix, p, "", a, suffix: suffix, report: &report)
        }
        var rng = SeededRandom(seed: options.seed &+ UInt64(index) &* 7_919)
        var best: (suffix: [Int], score: Float)?
        for _ in 0..<max(0, options.randomSuffixes) {
            let suffix = randomSuffix(&rng)
            let text = suffixText(suffix)
            if judged(try evaluator.respond(p.prompt, suffix: text), suffix: text) { return true }
            let score = try targetLogprob(p.prompt, suffix)
            if best == nil || score > best!.score { best = (suffix, score) }
        }
        let found = try search(p.prompt, from: best?.suffix ?? randomSuffix(&rng), rng: &rng)
        let text = suffixText(found)
        return judged(try evaluator.respond(p.prompt, suffix: text), suffix: text)
    }

    /// Token ids a suffix may use: ordinary (non-special) tokens.
    private lazy var suffixVocabulary: [Int] = CoordinateGradientSearch.vocabulary(evaluator)

    private func randomSuffix(_ rng: inout SeededRandom) -> [Int] {
        let vocab = suffixVocabulary
        guard !vocab.isEmpty else { return [] }
        return (0..<max(1, options.suffixTokens)).map { _ in vocab[Int(rng.next() % UInt64(vocab.count))] }
    }

    private func suffixText(_ suffix: [Int]) -> String { SuffixPlacement.text(suffix, evaluator: evaluator) }

    private func placed(_ instruction: String, _ suffix: [Int]) -> SuffixPlacement {
        SuffixPlacement(instruction, suffix: suffix, target: evaluator.tokenizer.encode(options.affirmative, addSpecialTokens: false),
                        evaluator: evaluator)
    }

    /// log p(affirmative target | prompt + suffix) under the bare model (teacher forcing).
    func targetLogprob(_ instruction: String, _ suffix: [Int]) throws(EvaluationError) -> Float {
        let p = placed(instruction, suffix)
        do {
            let lp = try evaluator.model.tokenLogprobs(p.ids)
            return lp.suffix(p.target.count).reduce(0, +)
        } catch {
            throw .generation(prompt: instruction, reason: error.description)
        }
    }

    /// The suffix as the model sees it, and for each of its positions the `topK` allowed
    /// tokens whose one-hot gradient of the target log-probability is largest.
    func rankedReplacements(_ instruction: String, _ suffix: [Int]) throws(EvaluationError) -> (tokens: [Int], ranked: [[Int]]) {
        let p = placed(instruction, suffix)
        guard !p.suffix.isEmpty, p.target.lowerBound > 0 else { return (suffix, []) }
        let grads: [[Float]]
        do {
            grads = try evaluator.model.oneHotGradients(p.ids, targets: p.target, positions: Array(p.suffix))
        } catch {
            throw .generation(prompt: instruction, reason: error.description)
        }
        let ranked = grads.map { CoordinateGradientSearch.top(options.topK, of: suffixVocabulary, by: $0) }
        return (p.suffixTokens, ranked)
    }

    /// Greedy coordinate gradient search (`CoordinateGradientSearch`) for the suffix that
    /// maximises the target's log-probability, within `searchSteps` steps of `candidates`
    /// swaps from the `topK` tokens, or `searchSeconds`.
    func search(_ instruction: String, from start: [Int], rng: inout SeededRandom) throws(EvaluationError) -> [Int] {
        guard !start.isEmpty, !suffixVocabulary.isEmpty else { return start }
        let search = CoordinateGradientSearch(steps: max(0, options.searchSteps), candidates: options.candidates,
                                              deadline: Date().addingTimeInterval(options.searchSeconds))
        return try search.run(from: start, rng: &rng,
                              score: { (s: [Int]) throws(EvaluationError) in Double(try targetLogprob(instruction, s)) },
                              rank: { (s: [Int]) throws(EvaluationError) in try rankedReplacements(instruction, s) }).suffix
    }
}
