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
    /// dV += Pᵀ · dO. Without a mask, queries are processed in blocks of
    /// `attentionQueryBlock` rows that only touch the keys they can see. Work runs in parallel over (batch, head) in the forward and over
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

        let causal = mask == nil
        // Without a mask, a block of queries i0..<i1 reads keys 0..<offset + i1 only:
        // scores past that are never computed.
        func keys(_ i1: Int) -> Int { causal ? offset + i1 : tk }
        let block = Tape.attentionQueryBlock

        flags.withUnsafeBufferPointer { fp in
            Parallel.forEach(bsz * heads, costPerItem: 2 * tq * tk * d, callsBLAS: true) { items in
                for item in items {
                    let b = item / heads, h = item % heads, g = h / group
                    let qh = qp + b * tq * qw + h * d
                    let kh = kp + b * tk * kw + g * d
                    let vh = vp + b * tk * kw + g * d
                    let yh = yp + b * tq * qw + h * d
                    let p = pp + item * tq * tk
                    for i0 in stride(from: 0, to: tq, by: block) {
                        let i1 = min(tq, i0 + block), nk = keys(i1)
                        BLAS.gemm(transB: true, m: i1 - i0, n: nk, k: d, alpha: scale, a: qh + i0 * qw, lda: qw,
                                  b: kh, ldb: kw, c: p + i0 * tk, ldc: tk)
                        for i in i0..<i1 {
                            let row = p + i * tk
                            if causal {
                                let limit = offset + i + 1
                                RowKernels.softmax(row, into: row, count: limit)
                                (row + limit).update(repeating: 0, count: tk - limit)
                            } else {
                                let allowed = fp.baseAddress! + (b * tq + i) * tk
                                Tape.maskedSoftmax(row, allowed: allowed, count: tk)
                            }
                        }
                        BLAS.gemm(m: i1 - i0, n: d, k: nk, a: p + i0 * tk, lda: tk, b: vh, ldb: kw,
                                  c: yh + i0 * qw, ldc: qw)
                    }
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
                    let dkh = dk.map { $0 + b * tk * kw + g * d }
                    let dvh = dv.map { $0 + b * tk * kw + g * d }
                    let ds = sp + item * tq * tk
                    for h in g * group..<(g + 1) * group {
                        let qh = qp + b * tq * qw + h * d
                        let doh = dy + b * tq * qw + h * d
                        let dqh = dq.map { $0 + b * tq * qw + h * d }
                        let p = pp + (b * heads + h) * tq * tk
                        for i0 in stride(from: 0, to: tq, by: block) {
                            let i1 = min(tq, i0 + block), nk = keys(i1), rows = i1 - i0
                            let pb = p + i0 * tk, sb = ds + i0 * tk
                            // dV += Pᵀ · dO
                            if let dvh {
                                BLAS.gemm(transA: true, m: nk, n: d, k: rows, a: pb, lda: tk, b: doh + i0 * qw, ldb: qw,
                                          beta: 1, c: dvh, ldc: kw)
                            }
                            guard dqh != nil || dkh != nil else { continue }
                            // dS = P ⊙ (dO · Vᵀ − rowsum) / √D
                            BLAS.gemm(transB: true, m: rows, n: nk, k: d, a: doh + i0 * qw, lda: qw, b: vh, ldb: kw,
                                      c: sb, ldc: tk)
                            for i in 0..<rows {
                                let pr = pb + i * tk, sr = sb + i * tk
                                let dot = FastMath.dot(pr, sr, count: nk)
                                for j in 0..<nk { sr[j] = pr[j] * (sr[j] - dot) * scale }
                            }
                            // dQ += dS · K, dK += dSᵀ · Q
                            if let dqh {
                                BLAS.gemm(m: rows, n: d, k: nk, a: sb, lda: tk, b: kh, ldb: kw,
                                          beta: 1, c: dqh + i0 * qw, ldc: qw)
                            }
                            if let dkh {
                                BLAS.gemm(transA: true, m: nk, n: d, k: rows, a: sb, lda: tk, b: qh + i0 * qw, ldb: qw,
                                          beta: 1, c: dkh, ldc: kw)
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Query rows per score block. Causal attention computes, for each block, only the
    /// keys its last query can see, which skips most of the masked upper triangle.
    public static let attentionQueryBlock = 64

    /// Multiply–add FLOPs of the GEMMs one `attention` forward executes (scores and
    /// probabilities · V), for throughput reports; the backward executes twice as many.
    public static func attentionForwardFlops(batch: Int, queries: Int, keys: Int, heads: Int, headSize: Int,
                                             causal: Bool) -> Double {
        var pairs = 0
        for i0 in stride(from: 0, to: queries, by: attentionQueryBlock) {
            let i1 = min(queries, i0 + attentionQueryBlock)
            pairs += (i1 - i0) * (causal ? keys - queries + i1 : keys)
        }
        return 4 * Double(batch * heads * pairs * headSize)
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
