import Engine
import Foundation
import Testing
@testable import Models

@Suite struct SamplerTests {
    /// Logits with a clear order and one tie, over a vocabulary big enough to exercise the partial sort.
    static func logits(seed: UInt64 = 7, count: Int = 500) -> [Float] {
        var rng = SeededRandom(seed: seed)
        var x = (0..<count).map { _ in rng.normal() * 2 }
        x[123] = 9
        x[321] = 9 // tie with 123: the lower id wins
        return x
    }

    @Test func greedyPicksFirstMaximum() {
        var rng = SeededRandom(seed: 1)
        #expect(Sampler.greedy.sample(Self.logits(), rng: &rng) == 123)
        #expect(Sampler.greedy.sample([0, 3, 1], rng: &rng) == 1)
    }

    @Test func topKOneEqualsGreedy() {
        var rng = SeededRandom(seed: 3)
        for seed in 0..<20 as Range<UInt64> {
            let x = Self.logits(seed: seed)
            var g = SeededRandom(seed: 0)
            let greedy = Sampler.greedy.sample(x, rng: &g)
            #expect(Sampler(temperature: 1.5, topK: 1).sample(x, rng: &rng) == greedy)
        }
    }

    @Test func tinyTopPEqualsGreedy() {
        var rng = SeededRandom(seed: 4)
        for seed in 0..<20 as Range<UInt64> {
            let x = Self.logits(seed: seed)
            var g = SeededRandom(seed: 0)
            let greedy = Sampler.greedy.sample(x, rng: &g)
            #expect(Sampler(temperature: 1, topP: 1e-6).sample(x, rng: &rng) == greedy)
        }
    }

    @Test func sameSeedSameSamples() {
        let x = Self.logits()
        let sampler = Sampler(temperature: 1.3, topK: 40, topP: 0.95)
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42), c = SeededRandom(seed: 43)
        let first = (0..<50).map { _ in sampler.sample(x, rng: &a) }
        let second = (0..<50).map { _ in sampler.sample(x, rng: &b) }
        let other = (0..<50).map { _ in sampler.sample(x, rng: &c) }
        #expect(first == second)
        #expect(first != other)
    }

    @Test func topKRestrictsToTheKBest() {
        let x = Self.logits()
        let best = Set((0..<x.count).sorted { x[$0] > x[$1] || (x[$0] == x[$1] && $0 < $1) }.prefix(5))
        var rng = SeededRandom(seed: 9)
        var seen = Set<Int>()
        for _ in 0..<400 { seen.insert(Sampler(temperature: 5, topK: 5).sample(x, rng: &rng)) }
        #expect(seen.isSubset(of: best))
        #expect(seen.count > 1)
    }

    @Test func samplingFollowsTheDistribution() {
        // Probabilities 0.5, 0.25, 0.25 at temperature 1.
        let x: [Float] = [log(2), 0, 0]
        var rng = SeededRandom(seed: 11)
        var counts = [0, 0, 0]
        let n = 8000
        for _ in 0..<n { counts[Sampler(temperature: 1).sample(x, rng: &rng)] += 1 }
        #expect(abs(Double(counts[0]) / Double(n) - 0.5) < 0.03)
        #expect(abs(Double(counts[1]) / Double(n) - 0.25) < 0.03)
        // Top-p 0.6 keeps the first two tokens (0.5 + 0.25 ≥ 0.6) and renormalises them.
        var kept = Set<Int>()
        for _ in 0..<500 { kept.insert(Sampler(temperature: 1, topP: 0.6).sample(x, rng: &rng)) }
        #expect(kept == [0, 1])
    }

    @Test func logSoftmaxMatchesDirectFormula() {
        let x: [Float] = [1, 2, 3]
        let direct = log(exp(Float(2)) / (exp(Float(1)) + exp(Float(2)) + exp(Float(3))))
        #expect(abs(Generator.logSoftmax(x, at: 1) - direct) < 1e-6)
    }
}
