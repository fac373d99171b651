extension Tape {
    /// Mean softmax cross-entropy of the logits `x · wᵀ` against integer targets, `chunk` rows
    /// at a time, so the `[N, V]` logits never exist whole: an LM head with a 49k vocabulary
    /// on a batch of 1,024 positions would hold 200 MB of logits, and as much again for
    /// their gradient.
    ///
    /// - x: `[N, d]` or `[B, T, d]` (rows in order)
    /// - w: `[V, d]` (a bias-free projection: the LM head)
    /// - targets: one per row, each in `0..<V` (drop ignored rows before calling)
    /// - returns: scalar `[]`, the mean over the N rows
    ///
    /// The output is a scalar, so its gradient is the gradient at dy = 1 times dy. The
    /// forward computes that gradient chunk by chunk while each chunk's logits are at hand:
    /// dlogits = (softmax − onehot(target)) / N, then dx = dlogits · w and dw = dlogitsᵀ · x
    /// into saved buffers (`[N, d]` and, for a trainable head, `[V, d]`); backward only
    /// scales them by dy. Nothing is recomputed and one chunk of logits is the largest buffer.
    public func linearCrossEntropy(_ x: Variable, _ w: Variable, targets: [Int32], chunk: Int = 128) -> Variable {
        let n = x.value.rows, d = w.shape[1], vocab = w.shape[0]
        precondition(x.value.lastDim == d, "linearCrossEntropy: input \(x.shape) against weight \(w.shape)")
        precondition(targets.count == n && n > 0, "linearCrossEntropy: \(targets.count) targets for \(n) rows")
        for (i, t) in targets.enumerated() {
            precondition(t >= 0 && Int(t) < vocab, "linearCrossEntropy: target \(t) at row \(i) is outside 0..<\(vocab)")
        }
        let y = output([], x, w)
        let logits = allocate([min(chunk, n), vocab], zeroed: false)
        let lse = allocate([min(chunk, n)], zeroed: false)
        // The gradient at dy = 1, for the inputs that need one.
        let dxSaved = y.requiresGrad && x.requiresGrad ? allocate([n, d], zeroed: false) : nil
        let dwSaved = y.requiresGrad && w.requiresGrad ? allocate([vocab, d], zeroed: true) : nil
        let xp = x.value.data, wp = w.value.data, lp = logits.data, sp = lse.data
        let scale = 1 / Float(n)
        var total = 0.0
        targets.withUnsafeBufferPointer { tp in
            for start in stride(from: 0, to: n, by: chunk) {
                let rows = min(chunk, n - start)
                BLAS.gemm(transB: true, m: rows, n: vocab, k: d, a: xp + start * d, b: wp, c: lp)
                Parallel.forEach(rows, costPerItem: 2 * vocab) { rs in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: vocab)
                    defer { scratch.deallocate() }
                    for r in rs { sp[r] = RowKernels.logSumExp(lp + r * vocab, count: vocab, scratch: scratch) }
                }
                for r in 0..<rows { total += Double(sp[r] - lp[r * vocab + Int(tp[start + r])]) }
                guard dxSaved != nil || dwSaved != nil else { continue }
                Parallel.forEach(rows, costPerItem: 2 * vocab) { rs in
                    for r in rs {
                        let row = lp + r * vocab, m = sp[r]
                        for j in 0..<vocab { row[j] = scale * FastMath.exp(row[j] - m) }
                        row[Int(tp[start + r])] -= scale
                    }
                }
                if let dxSaved {
                    BLAS.gemm(m: rows, n: d, k: vocab, a: lp, b: wp, c: dxSaved.data + start * d)
                }
                if let dwSaved {
                    BLAS.gemm(transA: true, m: vocab, n: d, k: rows, a: lp, b: xp + start * d, beta: 1, c: dwSaved.data)
                }
            }
        }
        y.value.data[0] = Float(total / Double(n))
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data[0] else { return }
            if let dxSaved {
                let (buffer, accumulate) = x.gradBufferForWriting()
                let out = buffer.data, src = dxSaved.data
                if accumulate {
                    for i in 0..<(n * d) { out[i] += dy * src[i] }
                } else {
                    for i in 0..<(n * d) { out[i] = dy * src[i] }
                }
            }
            if let dwSaved {
                let out = w.gradBuffer().data, src = dwSaved.data
                for i in 0..<(vocab * d) { out[i] += dy * src[i] }
            }
        }
        return y
    }
}
