extension Tape {
    /// Fused multi-head scaled dot-product attention (scores, mask, softmax, · V) with
    /// grouped key/value heads.
    ///
    /// - q: `[B, Tq, heads · D]`
    /// - k, v: `[B, Tk, kvHeads · D]`, Tk ≥ Tq (a KV cache holds the earlier positions)
    /// - mask: replaces the causal rule when given; query i sits at absolute position
    ///   Tk − Tq + i and, without a mask, sees keys 0...Tk − Tq + i
    /// - returns: `[B, Tq, heads · D]`; query head h reads kv head h / (heads / kvHeads);
    ///   a query with no allowed key outputs zeros
    ///
    /// Heads are read in place through BLAS strides (no transposed copies). The
    /// probabilities `[B, heads, Tq, Tk]` are saved; backward, per head:
    /// dP = dO · Vᵀ, dS = P ⊙ (dP − Σ_row dP ⊙ P) / √D, dQ += dS · K, dK += dSᵀ · Q,
    /// dV += Pᵀ · dO. Work runs in parallel over (batch, head) in the forward and over
    /// (batch, kv head) in the backward, so the query heads sharing a kv head accumulate
    /// into its dK and dV from one worker; BLAS runs single-threaded inside.
    public func attention(q: Variable, k: Variable, v: Variable, heads: Int, kvHeads: Int, mask: AttentionMask? = nil) -> Variable {
        precondition(q.value.rank == 3 && k.value.rank == 3 && v.value.rank == 3,
                     "attention: q, k, v must be [B, T, width], got \(q.shape), \(k.shape), \(v.shape)")
        precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0,
                     "attention: heads \(heads) is not a multiple of kvHeads \(kvHeads)")
        let bsz = q.shape[0], tq = q.shape[1], tk = k.shape[1]
        let qw = q.shape[2], kw = k.shape[2]
        precondition(qw % heads == 0, "attention: q width \(qw) is not divisible by \(heads) heads")
        let d = qw / heads
        precondition(k.shape == [bsz, tk, kvHeads * d] && v.shape == k.shape,
                     "attention: k \(k.shape) and v \(v.shape) must be [\(bsz), Tk, \(kvHeads * d)] for q \(q.shape)")
        precondition(tk >= tq, "attention: \(tk) keys for \(tq) queries; need Tk ≥ Tq")
        if let mask {
            precondition(mask.batch == bsz && mask.queries == tq && mask.keys == tk,
                         "attention: mask [\(mask.batch), \(mask.queries), \(mask.keys)] for [\(bsz), \(tq), \(tk)]")
        }
        let group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        let probs = allocate([bsz, heads, tq, tk])
        let y = output([bsz, tq, qw], q, k, v)
        let qp = q.value.data, kp = k.value.data, vp = v.value.data, yp = y.value.data, pp = probs.data
        let flags = mask?.allowed ?? []
        let offset = tk - tq

        flags.withUnsafeBufferPointer { fp in
            Parallel.forEach(bsz * heads, costPerItem: 2 * tq * tk * d, callsBLAS: true) { items in
                for item in items {
                    let b = item / heads, h = item % heads, g = h / group
                    let qh = qp + b * tq * qw + h * d
                    let kh = kp + b * tk * kw + g * d
                    let vh = vp + b * tk * kw + g * d
                    let p = pp + item * tq * tk
                    BLAS.gemm(transB: true, m: tq, n: tk, k: d, alpha: scale, a: qh, lda: qw, b: kh, ldb: kw, c: p)
                    for i in 0..<tq {
                        let row = p + i * tk
                        if mask == nil {
                            let limit = offset + i + 1
                            RowKernels.softmax(row, into: row, count: limit)
                            (row + limit).update(repeating: 0, count: tk - limit)
                        } else {
                            let allowed = fp.baseAddress! + (b * tq + i) * tk
                            Tape.maskedSoftmax(row, allowed: allowed, count: tk)
                        }
                    }
                    BLAS.gemm(m: tq, n: d, k: tk, a: p, b: vh, ldb: kw, c: yp + b * tq * qw + h * d, ldc: qw)
                }
            }
        }
        guard y.requiresGrad else { return y }
        record { [unowned self] in
            guard let dy = y.grad?.data else { return }
            let pp = probs.data
            let scratch = self.allocate([bsz * kvHeads, tq * tk])
            let sp = scratch.data
            let dq = q.requiresGrad ? q.gradBuffer().data : nil
            let dk = k.requiresGrad ? k.gradBuffer().data : nil
            let dv = v.requiresGrad ? v.gradBuffer().data : nil
            Parallel.forEach(bsz * kvHeads, costPerItem: 4 * group * tq * tk * d, callsBLAS: true) { items in
                for item in items {
                    let b = item / kvHeads, g = item % kvHeads
                    let kh = kp + b * tk * kw + g * d
                    let vh = vp + b * tk * kw + g * d
                    let ds = sp + item * tq * tk
                    for h in g * group..<(g + 1) * group {
                        let qh = qp + b * tq * qw + h * d
                        let doh = dy + b * tq * qw + h * d
                        let p = pp + (b * heads + h) * tq * tk
                        if let dv {
                            BLAS.gemm(transA: true, m: tk, n: d, k: tq, a: p, b: doh, ldb: qw,
                                      beta: 1, c: dv + b * tk * kw + g * d, ldc: kw)
                        }
                        guard dq != nil || dk != nil else { continue }
                        BLAS.gemm(transB: true, m: tq, n: tk, k: d, a: doh, lda: qw, b: vh, ldb: kw, c: ds)
                        for i in 0..<tq {
                            let pr = p + i * tk, sr = ds + i * tk
                            let dot = FastMath.dot(pr, sr, count: tk)
                            for j in 0..<tk { sr[j] = pr[j] * (sr[j] - dot) * scale }
                        }
                        if let dq {
                            BLAS.gemm(m: tq, n: d, k: tk, a: ds, b: kh, ldb: kw,
                                      beta: 1, c: dq + b * tq * qw + h * d, ldc: qw)
                        }
                        if let dk {
                            BLAS.gemm(transA: true, m: tk, n: d, k: tq, a: ds, b: qh, ldb: qw,
                                      beta: 1, c: dk + b * tk * kw + g * d, ldc: kw)
                        }
                    }
                }
            }
        }
        return y
    }

    /// Softmax over the allowed entries of a score row; the rest, and a row with no
    /// allowed entry at all, become 0.
    @inline(__always)
    static func maskedSoftmax(_ row: UnsafeMutablePointer<Float>, allowed: UnsafePointer<UInt8>, count: Int) {
        var m = -Float.infinity
        for j in 0..<count where allowed[j] != 0 { m = max(m, row[j]) }
        guard m > -Float.infinity else {
            row.update(repeating: 0, count: count)
            return
        }
        for j in 0..<count {
            let e = FastMath.exp(row[j] - m)
            row[j] = allowed[j] != 0 ? e : 0
        }
        let inv = 1 / FastMath.sum(row, count: count)
        for j in 0..<count { row[j] *= inv }
    }
}
