extension Tape {
    /// Softmax over the last dim.
    ///
    /// - x: `[..., d]`
    /// - returns: x's shape, each row summing to 1
    ///
    /// Backward: dx += y ⊙ (dy - Σ_row dy ⊙ y), using the saved output.
    public func softmax(_ x: Variable) -> Variable {
        let d = x.value.lastDim, rows = x.value.rows
        let y = output(x.shape, zeroed: false, x)
        let xp = x.value.data, yp = y.value.data
        Parallel.forEach(rows, costPerItem: 4 * d) { rs in
            for r in rs { RowKernels.softmax(xp + r * d, into: yp + r * d, count: d) }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dx = x.gradBuffer().data
            Parallel.forEach(rows, costPerItem: 2 * d) { rs in
                for r in rs {
                    let p = yp + r * d, g = dy + r * d, out = dx + r * d
                    let dot = FastMath.dot(p, g, count: d)
                    for j in 0..<d { out[j] += p[j] * (g[j] - dot) }
                }
            }
        }
        return y
    }
}
