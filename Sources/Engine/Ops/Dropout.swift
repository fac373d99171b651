extension Tape {
    /// Inverted dropout: zeroes each element with probability `p` and scales the rest
    /// by 1 / (1 − p). Identity (returns `x` itself) when `p == 0` or when the tape is
    /// not recording (evaluation, generation).
    ///
    /// - x: any shape; p in [0, 1)
    /// - rng: advanced by one draw per element, so runs are reproducible
    ///
    /// Backward: dx += dy ⊙ mask, with the saved scaled mask.
    public func dropout(_ x: Variable, p: Float, rng: inout SeededRandom) -> Variable {
        precondition(p >= 0 && p < 1, "dropout: p = \(p) is outside [0, 1)")
        guard p > 0, isRecording else { return x }
        let n = x.value.count
        let keep = allocate(x.shape)
        let kp = keep.data
        let s = 1 / (1 - p)
        for i in 0..<n { kp[i] = rng.uniform() < p ? 0 : s }
        let y = output(x.shape, x)
        let xp = x.value.data, yp = y.value.data
        Parallel.forEach(n) { r in for i in r { yp[i] = xp[i] * kp[i] } }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let kp = keep.data
            let dx = x.gradBuffer().data
            Parallel.forEach(n) { r in for i in r { dx[i] += dy[i] * kp[i] } }
        }
        return y
    }
}
