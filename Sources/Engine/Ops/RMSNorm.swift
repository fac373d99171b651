extension Tape {
    /// RMS normalisation over the last dim, Llama form:
    /// `x · rsqrt(mean(x²) + eps) · weight`.
    ///
    /// - x: `[..., d]`; weight: `[d]`
    /// - returns: x's shape
    ///
    /// Saves each row's r = rsqrt(mean(x²) + eps). Backward, with g = dy ⊙ weight:
    /// dx = r · g - x · r³ · mean(g ⊙ x), dweight += Σ dy ⊙ x · r.
    public func rmsNorm(_ x: Variable, weight: Variable, eps: Float) -> Variable {
        let d = x.value.lastDim, rows = x.value.rows
        precondition(weight.shape == [d], "rmsNorm: weight \(weight.shape) must be [\(d)] for input \(x.shape)")
        let y = output(x.shape, zeroed: false, x, weight)
        let rs = allocate([rows], zeroed: false)
        let xp = x.value.data, yp = y.value.data, wp = weight.value.data, rp = rs.data
        Parallel.forEach(rows, costPerItem: d) { range in
            for r in range {
                let row = xp + r * d, out = yp + r * d
                var ss: Float = 0
                for j in 0..<d { ss += row[j] * row[j] }
                let inv = 1 / (ss / Float(d) + eps).squareRoot()
                rp[r] = inv
                for j in 0..<d { out[j] = row[j] * inv * wp[j] }
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let rp = rs.data   // the closure keeps the saved statistics alive
            if x.requiresGrad {
                let dx = x.gradBuffer().data
                Parallel.forEach(rows, costPerItem: 2 * d) { range in
                    for r in range {
                        let row = xp + r * d, g = dy + r * d, out = dx + r * d
                        let inv = rp[r]
                        var sgx: Float = 0
                        for j in 0..<d { sgx += g[j] * wp[j] * row[j] }
                        let c = inv * inv * inv * sgx / Float(d)
                        for j in 0..<d { out[j] += inv * g[j] * wp[j] - row[j] * c }
                    }
                }
            }
            if weight.requiresGrad {
                let dw = weight.gradBuffer().data
                Parallel.forEach(d, costPerItem: rows) { cols in
                    for r in 0..<rows {
                        let row = xp + r * d, g = dy + r * d, inv = rp[r]
                        for j in cols { dw[j] += g[j] * row[j] * inv }
                    }
                }
            }
        }
        return y
    }
}
