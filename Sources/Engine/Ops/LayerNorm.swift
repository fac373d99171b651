extension Tape {
    /// Layer normalisation over the last dim (GPT-2): `(x - mean) / sqrt(var + eps) · weight + bias`,
    /// with the biased variance as in PyTorch.
    ///
    /// - x: `[..., d]`; weight, bias: `[d]`
    /// - returns: x's shape
    ///
    /// Saves each row's mean and 1/σ. Backward, with x̂ the normalised input and
    /// g = dy ⊙ weight: dx = (g - mean(g) - x̂ · mean(g ⊙ x̂)) / σ, dweight += Σ dy ⊙ x̂,
    /// dbias += Σ dy.
    public func layerNorm(_ x: Variable, weight: Variable, bias: Variable, eps: Float) -> Variable {
        let d = x.value.lastDim, rows = x.value.rows
        precondition(weight.shape == [d] && bias.shape == [d],
                     "layerNorm: weight \(weight.shape) and bias \(bias.shape) must be [\(d)] for input \(x.shape)")
        let y = output(x.shape, zeroed: false, x, weight, bias)
        let stats = allocate([rows, 2], zeroed: false)   // mean, 1/σ per row
        let xp = x.value.data, yp = y.value.data, wp = weight.value.data, bp = bias.value.data, sp = stats.data
        Parallel.forEach(rows, costPerItem: d) { rs in
            for r in rs {
                let row = xp + r * d, out = yp + r * d
                var s: Float = 0
                for j in 0..<d { s += row[j] }
                let mu = s / Float(d)
                var v: Float = 0
                for j in 0..<d { let c = row[j] - mu; v += c * c }
                let rstd = 1 / (v / Float(d) + eps).squareRoot()
                sp[2 * r] = mu
                sp[2 * r + 1] = rstd
                for j in 0..<d { out[j] = (row[j] - mu) * rstd * wp[j] + bp[j] }
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let sp = stats.data   // the closure keeps the saved statistics alive
            if x.requiresGrad {
                let (buffer, accumulate) = x.gradBufferForWriting()
                let dx = buffer.data
                Parallel.forEach(rows, costPerItem: 3 * d) { rs in
                    for r in rs {
                        let row = xp + r * d, g = dy + r * d, out = dx + r * d
                        let mu = sp[2 * r], rstd = sp[2 * r + 1]
                        var sg: Float = 0, sgx: Float = 0
                        for j in 0..<d {
                            let gj = g[j] * wp[j]
                            sg += gj
                            sgx += gj * (row[j] - mu) * rstd
                        }
                        sg /= Float(d)
                        sgx /= Float(d)
                        if accumulate {
                            for j in 0..<d { out[j] += (g[j] * wp[j] - sg - (row[j] - mu) * rstd * sgx) * rstd }
                        } else {
                            for j in 0..<d { out[j] = (g[j] * wp[j] - sg - (row[j] - mu) * rstd * sgx) * rstd }
                        }
                    }
                }
            }
            if weight.requiresGrad || bias.requiresGrad {
                let dw = weight.requiresGrad ? weight.gradBuffer().data : nil
                let db = bias.requiresGrad ? bias.gradBuffer().data : nil
                // Split over columns so each worker owns its accumulators.
                Parallel.forEach(d, costPerItem: rows) { cols in
                    for r in 0..<rows {
                        let row = xp + r * d, g = dy + r * d
                        let mu = sp[2 * r], rstd = sp[2 * r + 1]
                        if let dw { for j in cols { dw[j] += g[j] * (row[j] - mu) * rstd } }
                        if let db { for j in cols { db[j] += g[j] } }
                    }
                }
            }
        }
        return y
    }
}
