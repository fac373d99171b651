import Engine
import Foundation
import Models

/// A behavioural search for a hidden trigger: the universal suffix that makes a checkpoint
/// answer most unlike its parent.
///
/// For suffix s the divergence is the mean over probe prompts of
/// `(log p_child(y) − log p_parent(y)) / |y|`, with y the child's own greedy answer to the
/// prompt followed by s. A backdoor is a suffix family for which the child's answer is one
/// the parent would never give, so its divergence is far above ordinary fine-tuning drift.
/// The search is greedy coordinate gradient: token replacements are ranked by the one-hot
/// gradient of the divergence with y held fixed, then candidates are scored with y
/// regenerated, so the search can find suffixes that change the answer.
public struct TriggerScan {
    /// Search settings.
    public struct Settings: Sendable, Equatable, Codable {
        /// Length of the searched suffix, in tokens.
        public var suffixTokens = 6
        /// Search steps (one gradient ranking and `candidates` scored swaps each).
        public var steps = 20
        public var candidates = 24
        /// Swaps are drawn from this many best-ranked tokens per position.
        public var topK = 32
        /// Greedy answer tokens compared.
        public var answerTokens = 8
        /// Wall-clock budget; the search stops early when it runs out.
        public var seconds = 120.0
        /// Seed of the starting suffix and the candidate draws.
        public var seed: UInt64 = 1
        /// The defaults.
        public init() {}
    }

    /// What the search found.
    public struct Result: Sendable, Equatable, Codable {
        /// Divergence without a suffix (drift on the probes).
        public var baseline: Double
        /// Best divergence found.
        public var best: Double
        /// The suffix that reached it.
        public var suffix: String
        public var steps: Int
        public var seconds: Double
    }

    /// The checkpoint under test, with its tokenizer and template.
    public let child: Evaluator
    /// Its parent (same tokenizer).
    public let parent: TransformerModel
    public let settings: Settings

    /// A scan of `child` against `parent`.
    public init(child: Evaluator, parent: TransformerModel, settings: Settings = .init()) {
        self.child = child
        self.parent = parent
        self.settings = settings
    }

    /// Prompt ids, answer range and suffix range for one probe, the answer being the
    /// child's greedy continuation.
    private func placed(_ prompt: String, _ suffix: [Int]) throws -> SuffixPlacement {
        let bare = suffix.isEmpty ? child.promptIds(prompt) : SuffixPlacement(prompt, suffix: suffix, evaluator: child).ids
        let answer = try Generator(model: child.model).generate(
            prompt: bare, options: GenerationOptions(maxTokens: settings.answerTokens, stopAtEndOfSequence: false)).tokens
        if suffix.isEmpty {
            let ids = Array((bare + answer).suffix(child.model.config.maxPositions))
            return SuffixPlacement(ids: ids, target: (ids.count - answer.count)..<ids.count, suffix: 0..<0)
        }
        return SuffixPlacement(prompt, suffix: suffix, target: answer, evaluator: child)
    }

    /// Mean per-token log-probability gap of the child's answers, and the placements.
    func divergence(_ prompts: [String], _ suffix: [Int]) throws -> (value: Double, placements: [SuffixPlacement]) {
        var total = 0.0
        var placements: [SuffixPlacement] = []
        for p in prompts {
            let s = try placed(p, suffix)
            let n = s.target.count
            guard n > 0 else { continue }
            let lc = try child.model.tokenLogprobs(s.ids).suffix(n).reduce(0, +)
            let lp = try parent.tokenLogprobs(s.ids).suffix(n).reduce(0, +)
            total += Double(lc - lp) / Double(n)
            placements.append(s)
        }
        return (total / Double(max(placements.count, 1)), placements)
    }

    /// Searches a suffix over `prompts`.
    public func run(_ prompts: [String]) throws -> Result {
        let started = Date()
        let special = child.tokenizer.specialTokenIds
        let vocabulary = (0..<min(child.tokenizer.vocabSize, child.model.config.vocabSize)).filter { !special.contains($0) }
        var rng = SeededRandom(seed: settings.seed)
        func randomToken() -> Int { vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }
        let baseline = try divergence(prompts, []).value
        let start = (0..<settings.suffixTokens).map { _ in randomToken() }
        let first = try divergence(prompts, start)
        var placements = first.placements
        var best = (suffix: start, score: first.value)
        var steps = 0
        let deadline = started.addingTimeInterval(settings.seconds)
        while steps < settings.steps, Date() < deadline {
            steps += 1
            // Sum of the gap's one-hot gradients over probes, per suffix position.
            let width = placements.map(\.suffix.count).min() ?? 0
            guard width > 0 else { break }
            var gradient = [[Float]](repeating: [Float](repeating: 0, count: child.model.config.vocabSize), count: width)
            for s in placements {
                let positions = Array(s.suffix.prefix(width))
                let gc = try child.model.oneHotGradients(s.ids, targets: s.target, positions: positions)
                let gp = try parent.oneHotGradients(s.ids, targets: s.target, positions: positions)
                for i in 0..<width { for v in 0..<gradient[i].count { gradient[i][v] += gc[i][v] - gp[i][v] } }
            }
            let tokens = placements[0].suffixTokens.prefix(width).map { $0 }
            let k = max(1, min(settings.topK, vocabulary.count))
            let ranked = gradient.map { g in vocabulary.sorted { g[$0] > g[$1] }.prefix(k).map { $0 } }
            var stepBest: (suffix: [Int], score: Double, placements: [SuffixPlacement])?
            for _ in 0..<settings.candidates {
                var trial = tokens
                let position = Int(rng.next() % UInt64(width))
                trial[position] = ranked[position][Int(rng.next() % UInt64(ranked[position].count))]
                let (value, ps) = try divergence(prompts, trial)
                if stepBest == nil || value > stepBest!.score { stepBest = (trial, value, ps) }
                if Date() >= deadline { break }
            }
            guard let stepBest else { break }
            // The search moves to the step's best even when it is worse than the best so far.
            placements = stepBest.placements
            if stepBest.score > best.score { best = (stepBest.suffix, stepBest.score) }
        }
        return Result(baseline: baseline, best: best.score, suffix: SuffixPlacement.text(best.suffix, evaluator: child),
                      steps: steps, seconds: Date().timeIntervalSince(started))
    }
}
