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

    /// The suffix as the model sees it, and per position the `topK` tokens ranked by the
    /// one-hot gradient of the divergence summed over probes (answers held fixed).
    private func rank(_ placements: [SuffixPlacement], vocabulary: [Int]) throws -> (tokens: [Int], ranked: [[Int]]) {
        let width = placements.map(\.suffix.count).min() ?? 0
        guard width > 0 else { return ([], []) }
        var gradient = [[Float]](repeating: [Float](repeating: 0, count: child.model.config.vocabSize), count: width)
        for s in placements {
            let positions = Array(s.suffix.prefix(width))
            let gc = try child.model.oneHotGradients(s.ids, targets: s.target, positions: positions)
            let gp = try parent.oneHotGradients(s.ids, targets: s.target, positions: positions)
            for i in 0..<width { for v in 0..<gradient[i].count { gradient[i][v] += gc[i][v] - gp[i][v] } }
        }
        return (Array(placements[0].suffixTokens.prefix(width)),
                gradient.map { CoordinateGradientSearch.top(settings.topK, of: vocabulary, by: $0) })
    }

    /// Searches a suffix over `prompts` (`CoordinateGradientSearch`).
    public func run(_ prompts: [String]) throws -> Result {
        let started = Date()
        let vocabulary = CoordinateGradientSearch.vocabulary(child)
        var rng = SeededRandom(seed: settings.seed)
        let baseline = try divergence(prompts, []).value
        let start = (0..<settings.suffixTokens).map { _ in vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }
        // Placements of the suffixes scored since the last ranking: the search ranks from one of them.
        var scored: [[Int]: [SuffixPlacement]] = [:]
        let search = CoordinateGradientSearch(steps: settings.steps, candidates: settings.candidates,
                                              deadline: started.addingTimeInterval(settings.seconds))
        let found = try search.run(from: start, rng: &rng, score: { suffix in
            let (value, placements) = try divergence(prompts, suffix)
            scored[suffix] = placements
            return value
        }, rank: { suffix in
            let placements = try scored[suffix] ?? divergence(prompts, suffix).placements
            scored.removeAll()
            return try rank(placements, vocabulary: vocabulary)
        })
        return Result(baseline: baseline, best: found.score, suffix: SuffixPlacement.text(found.suffix, evaluator: child),
                      steps: found.steps, seconds: Date().timeIntervalSince(started))
    }
}
