import Testing
@testable import Engine

/// Finite-difference gradient check: compares the tape's gradient of
/// `L = Σ seed ⊙ f(inputs)` for every input that requires a gradient against
/// central differences (Float32 forward, Double accumulation of L).
///
/// Also checks that a second backward pass without zeroing doubles every gradient:
/// ops must accumulate into `gradBuffer()`, never overwrite it.
/// `f` runs with recording on for the numeric passes too, so ops that are identity
/// when not recording (dropout) are checked as trained; it must be deterministic.
func checkGradients(
    _ inputs: [Variable],
    eps: Float = 1e-2, tolerance: Float = 2e-2,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ f: (Tape, [Variable]) -> Variable
) {
    var rng = SeededRandom(seed: 99)
    // Analytic: backward with a fixed random seed so every output element matters.
    let tape = Tape()
    let out = f(tape, inputs)
    let seed = Tensor(shape: out.shape, scalars: (0..<out.value.count).map { _ in rng.uniform(-1, 1) })
    for v in inputs { v.grad = nil }
    tape.backward(out, seed: seed)
    let first = inputs.map { $0.grad?.copy() }
    // Accumulation: a second pass on a fresh tape adds the same gradient again.
    let tape2 = Tape()
    tape2.backward(f(tape2, inputs), seed: seed)
    for (which, v) in inputs.enumerated() where v.requiresGrad {
        guard let g1 = first[which], let g2 = v.grad else { continue }
        var worst: Float = 0
        for i in 0..<g1.count { worst = max(worst, abs(g2.data[i] - 2 * g1.data[i]) / max(1, abs(g1.data[i]))) }
        #expect(worst < 1e-5, "input \(which): second backward did not accumulate (error \(worst))", sourceLocation: sourceLocation)
    }
    func loss() -> Double {
        let t = Tape()
        let o = f(t, inputs)
        var s = 0.0
        for i in 0..<o.value.count { s += Double(o.value.data[i]) * Double(seed.data[i]) }
        return s
    }
    for (which, v) in inputs.enumerated() where v.requiresGrad {
        let analytic = first[which] ?? Tensor(zeros: v.shape)
        var worst: Float = 0
        for i in 0..<v.value.count {
            let saved = v.value.data[i]
            v.value.data[i] = saved + eps
            let up = loss()
            v.value.data[i] = saved - eps
            let down = loss()
            v.value.data[i] = saved
            let numeric = Float((up - down) / Double(2 * eps))
            let err = abs(numeric - analytic.data[i]) / max(1, abs(numeric))
            worst = max(worst, err)
        }
        #expect(worst < tolerance, "input \(which) (\(v.name)): worst relative error \(worst)", sourceLocation: sourceLocation)
    }
}

/// A variable of `shape` with uniform values in [lo, hi), from `rng`.
func randomVariable(_ shape: [Int], _ rng: inout SeededRandom, lo: Float = -1, hi: Float = 1,
                    requiresGrad: Bool = true, name: String = "") -> Variable {
    let t = Tensor(zeros: shape)
    rng.fillUniform(t, lo, hi)
    return Variable(t, requiresGrad: requiresGrad, name: name)
}
