extension Tape {
    /// Inverted dropout: zeroes each element with probability `p` and scales the rest
    /// by 1 / (1 − p). Identity (returns `x` itself) when `p == 0` or when the tape is
    /// not recording (evaluation, generation).
    ///
    /// - x: any shape; p in [0, 1)
    /// - rng: advanced by one draw per element, so runs are reproducible; under a
    ///   `rowShard`, by one draw per element of the whole batch (x then holds the shard's
    ///   rows, row-major), the shard's rows taking their own elements' draws
    ///
    /// Backward: dx += dy ⊙ mask, with the saved scaled mask.
    public func dropout(_ x: Variable, p: Float, rng: inout SeededRandom) -> Variable {
        precondition(p >= 0 && p < 1, "dropout: p = \(p) is outside [0, 1)")
        guard p > 0, isRecording else { return x }
        let n = x.value.count
        let keep = allocate(x.shape)
        let kp = keep.data
        let s = 1 / (1 - p)
        var skipped = (before: 0, after: 0)
        if let shard = rowShard {
            precondition(n % max(1, shard.rows.count) == 0, "dropout: input \(x.shape) is not \(shard.rows.count) rows of a batch")
            let perRow = n / max(1, shard.rows.count)
            skipped = (shard.rows.lowerBound * perRow, (shard.of - shard.rows.upperBound) * perRow)
        }
        for _ in 0..<skipped.before { _ = rng.next() }
        for i in 0..<n { kp[i] = rng.uniform() < p ? 0 : s }
        for _ in 0..<skipped.after { _ = rng.next() }
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
