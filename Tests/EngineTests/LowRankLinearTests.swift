import Testing
@testable import Engine

@Suite struct LowRankLinearTests {
    @Test func gradientsOfEveryInput() {
        var rng = SeededRandom(seed: 3)
        let x = randomVariable([2, 3, 6], &rng), w = randomVariable([5, 6], &rng), bias = randomVariable([5], &rng)
        let a = randomVariable([2, 6], &rng), b = randomVariable([5, 2], &rng)
        checkGradients([x, w, bias, a, b]) { t, p in
            t.linear(p[0], p[1], bias: p[2], lowRank: LowRankUpdate(input: p[0], a: p[3], b: p[4], scale: 1.5))
        }
    }

    @Test func separateInputGetsItsOwnGradient() {
        var rng = SeededRandom(seed: 4)
        let x = randomVariable([4, 6], &rng), u = randomVariable([4, 6], &rng)
        let w = randomVariable([3, 6], &rng, requiresGrad: false)
        let a = randomVariable([2, 6], &rng), b = randomVariable([3, 2], &rng)
        checkGradients([x, u, a, b]) { t, p in
            t.linear(p[0], w, lowRank: LowRankUpdate(input: p[1], a: p[2], b: p[3], scale: 0.5))
        }
        #expect(w.grad == nil)
    }

    /// The fused op computes what the composed ops compute, values and gradients, at a size
    /// large enough for the split products.
    @Test func matchesComposedOps() {
        var rng = SeededRandom(seed: 5)
        let x = randomVariable([2, 96, 64], &rng), w = randomVariable([80, 64], &rng, requiresGrad: false)
        let bias = randomVariable([80], &rng, requiresGrad: false)
        let a = randomVariable([8, 64], &rng), b = randomVariable([80, 8], &rng)
        let seed = Tensor(zeros: [2, 96, 80])
        rng.fillUniform(seed, -1, 1)
        func run(fused: Bool) -> [[Float]] {
            for v in [x, a, b] { v.grad = nil }
            let t = Tape()
            let y = fused
                ? t.linear(x, w, bias: bias, lowRank: LowRankUpdate(input: x, a: a, b: b, scale: 2))
                : t.add(t.linear(x, w, bias: bias), t.scale(t.linear(t.linear(x, a), b), 2))
            t.backward(y, seed: seed)
            return [y.value.scalars] + [x, a, b].map { $0.grad?.scalars ?? [] }
        }
        let composed = run(fused: false)
        Parallel.setThreads(2)
        let fused = run(fused: true)
        Parallel.setThreads(1)
        for (f, c) in zip(fused, composed) {
            #expect(f.count == c.count)
            let worst = zip(f, c).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst < 1e-4)
        }
    }
}
