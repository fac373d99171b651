import Testing
@testable import Engine

/// Finite-difference gradient check: compares the tape's gradient of
/// `L = Σ seed ⊙ f(inputs)` for every input that requires a gradient against
/// central differences, in double-checked Float32 (step 1e-2 on values of order 1).
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
    func loss() -> Double {
        let t = Tape()
        let o = t.withoutGrad { f(t, inputs) }
        var s = 0.0
        for i in 0..<o.value.count { s += Double(o.value.data[i]) * Double(seed.data[i]) }
        return s
    }
    for (which, v) in inputs.enumerated() where v.requiresGrad {
        let analytic = v.grad ?? Tensor(zeros: v.shape)
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
