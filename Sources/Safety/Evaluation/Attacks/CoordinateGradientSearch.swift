import Engine
import Foundation

/// Greedy coordinate gradient search (GCG) over a token suffix, shared by the suffix attack
/// and the trigger scan. Each step, `rank` gives the suffix as the model sees it and, per
/// position, the tokens whose one-hot gradient promises the largest gain; `candidates`
/// single-token swaps drawn from those are scored, and the search moves to the best swap
/// even when it is worse than the best suffix so far. It returns the best suffix seen,
/// after `steps` steps or at `deadline`.
struct CoordinateGradientSearch {
    var steps: Int
    var candidates: Int
    var deadline: Date

    /// What the search found.
    struct Outcome {
        var suffix: [Int]
        var score: Double
        /// Steps started.
        var steps: Int
    }

    /// Tokens a suffix may use: the vocabulary shared by tokenizer and model, without
    /// special tokens.
    static func vocabulary(_ evaluator: Evaluator) -> [Int] {
        let special = evaluator.tokenizer.specialTokenIds
        return (0..<min(evaluator.tokenizer.vocabSize, evaluator.model.config.vocabSize)).filter { !special.contains($0) }
    }

    /// The `k` entries of `vocabulary` with the largest `gradient`.
    static func top(_ k: Int, of vocabulary: [Int], by gradient: [Float]) -> [Int] {
        Array(vocabulary.filter { $0 < gradient.count }.sorted { gradient[$0] > gradient[$1] }.prefix(max(1, k)))
    }

    func run<E: Error>(from start: [Int], rng: inout SeededRandom, score: ([Int]) throws(E) -> Double,
                       rank: ([Int]) throws(E) -> (tokens: [Int], ranked: [[Int]])) throws(E) -> Outcome {
        var suffix = start
        var best = Outcome(suffix: start, score: try score(start), steps: 0)
        while best.steps < steps, Date() < deadline {
            best.steps += 1
            let (current, ranked) = try rank(suffix)
            guard !ranked.isEmpty, ranked.allSatisfy({ !$0.isEmpty }) else { break }
            var step: (suffix: [Int], score: Double)?
            for _ in 0..<max(1, candidates) {
                var trial = current
                let position = Int(rng.next() % UInt64(min(trial.count, ranked.count)))
                let choices = ranked[position]
                trial[position] = choices[Int(rng.next() % UInt64(choices.count))]
                let s = try score(trial)
                if step == nil || s > step!.score { step = (trial, s) }
                if Date() >= deadline { break }
            }
            guard let step else { break }
            suffix = step.suffix
            if step.score > best.score { (best.suffix, best.score) = (step.suffix, step.score) }
        }
        return best
    }
}
