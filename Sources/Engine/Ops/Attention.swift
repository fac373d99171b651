extension Tape {
    /// Fused multi-head scaled dot-product attention (scores, mask, softmax, · V) with
    /// grouped key/value heads.
    ///
    /// - q: `[B, Tq, heads · D]`
    /// - k, v: `[B, Tk, kvHeads · D]`, Tk ≥ Tq (a KV cache holds the earlier positions)
    /// - mask: replaces the causal rule when given; query i sits at absolute position
    ///   Tk − Tq + i and, without a mask, sees keys 0...Tk − Tq + i
    /// - keyBatch: which sequence of k and v each query sequence reads (default: the same
    ///   one); batched decoding feeds some of the sequences a cache holds. Inference only.
    /// - returns: `[B, Tq, heads · D]`; query head h reads kv head h / (heads / kvHeads);
    ///   a query with no allowed key outputs zeros
    ///
    /// Heads are read in place through BLAS strides (no transposed copies). Nothing of
    /// size Tq × Tk is saved: backward recomputes each block's probabilities P from q and
    /// k with the same kernels (`probabilities`), which keeps the memory attention holds
    /// between forward and backward linear in the row length. Backward, per head and block:
    /// dP = dO · Vᵀ, dS = P ⊙ (dP − Σ_row dP ⊙ P) / √D, dQ += dS · K, dK += dSᵀ · Q,
    /// dV += Pᵀ · dO. Queries are processed in blocks of `attentionQueryBlock` rows that
    /// only touch the span of keys they can see (causal, or as the mask allows). Work runs in parallel over (batch, head) in the forward and over
    /// (batch, kv head) in the backward, so the query heads sharing a kv head accumulate
    /// into its dK and dV from one worker; BLAS runs single-threaded inside.
    public func attention(q: Variable, k: Variable, v: Variable, heads: Int, kvHeads: Int, mask: AttentionMask? = nil,
                          keyBatch: [Int]? = nil) -> Variable {
        precondition(q.value.rank == 3 && k.value.rank == 3 && v.value.rank == 3,
                     "attention: q, k, v must be [B, T, width], got \(q.shape), \(k.shape), \(v.shape)")
        precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0,
                     "attention: heads \(heads) is not a multiple of kvHeads \(kvHeads)")
        let bsz = q.shape[0], tq = q.shape[1], tk = k.shape[1]
        let qw = q.shape[2], kw = k.shape[2]
        precondition(qw % heads == 0, "attention: q width \(qw) is not divisible by \(heads) heads")
        let d = qw / heads
        let kb = k.shape[0]
        precondition(k.shape == [kb, tk, kvHeads * d] && v.shape == k.shape && (keyBatch == nil ? kb == bsz : keyBatch!.count == bsz),
                     "attention: k \(k.shape) and v \(v.shape) must be [\(bsz), Tk, \(kvHeads * d)] for q \(q.shape)")
        precondition(keyBatch?.allSatisfy { (0..<kb).contains($0) } ?? true, "attention: keyBatch outside 0..<\(kb)")
        precondition(tk >= tq, "attention: \(tk) keys for \(tq) queries; need Tk ≥ Tq")
        if let mask {
            precondition(mask.batch == bsz && mask.queries == tq && mask.keys == tk,
                         "attention: mask [\(mask.batch), \(mask.queries), \(mask.keys)] for [\(bsz), \(tq), \(tk)]")
        }
        let group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        let y = output([bsz, tq, qw], zeroed: false, q, k, v)
        let qp = q.value.data, kp = k.value.data, vp = v.value.data, yp = y.value.data
        let flags = mask?.allowed ?? []
        let offset = tk - tq

        let causal = mask == nil
        let block = Tape.attentionQueryBlock
        // The keys each block of queries can see: 0..<offset + i1 without a mask, else the
        // span from the first to the last allowed key of any of its rows. Scores outside
        // are never computed (packed or padded batches skip whole key blocks).
        let ranges = Tape.keyRanges(mask: mask, batch: bsz, queries: tq, keys: tk, block: block)
        let blocksPerSequence = (tq + block - 1) / block
        // One block of probabilities per (sequence, head), alive only during this forward.
        let blockRows = min(block, tq)
        let scratch = TensorStorage(count: bsz * heads * blockRows * tk)

        flags.withUnsafeBufferPointer { fp in
            Parallel.forEach(bsz * heads, costPerItem: 2 * tq * tk * d, callsBLAS: true) { items in
                for item in items {
                    let b = item / heads, h = item % heads, g = h / group
                    let kvb = keyBatch?[b] ?? b
                    let qh = qp + b * tq * qw + h * d
                    let kh = kp + kvb * tk * kw + g * d
                    let vh = vp + kvb * tk * kw + g * d
                    let yh = yp + b * tq * qw + h * d
                    let p = scratch.pointer + item * blockRows * tk
                    for i0 in stride(from: 0, to: tq, by: block) {
                        let i1 = min(tq, i0 + block)
                        let keys = ranges[causal ? i0 / block : b * blocksPerSequence + i0 / block]
                        let lo = keys.lowerBound, nk = keys.count
                        guard nk > 0 else {
                            // No row of the block may read any key: the output rows are zero.
                            for i in i0..<i1 { (yh + i * qw).update(repeating: 0, count: d) }
                            continue
                        }
                        Tape.probabilities(q: qh, qStride: qw, k: kh, kStride: kw, headSize: d, scale: scale, rows: i0..<i1,
                                           keys: keys, causalOffset: causal ? offset : nil,
                                           allowed: causal ? nil : fp.baseAddress! + b * tq * tk, keyCount: tk, into: p)
                        BLAS.gemm(m: i1 - i0, n: d, k: nk, a: p + lo, lda: tk, b: vh + lo * kw, ldb: kw,
                                  c: yh + i0 * qw, ldc: qw)
                    }
                }
            }
        }
        guard y.requiresGrad else { return y }
        precondition(keyBatch == nil, "attention: keyBatch is for inference (run without recording)")
        record { [unowned self] in
            guard let dy = y.grad?.data else { return }
            // Per (sequence, kv head): one block of recomputed P, then one of dS.
            let scratch = self.allocate([bsz * kvHeads, 2 * blockRows * tk], zeroed: false)
            let sp = scratch.data
            let dq = q.requiresGrad ? q.gradBuffer().data : nil
            let dk = k.requiresGrad ? k.gradBuffer().data : nil
            let dv = v.requiresGrad ? v.gradBuffer().data : nil
            flags.withUnsafeBufferPointer { fp in
                Parallel.forEach(bsz * kvHeads, costPerItem: 5 * group * tq * tk * d, callsBLAS: true) { items in
                    for item in items {
                        let b = item / kvHeads, g = item % kvHeads
                        let kh = kp + b * tk * kw + g * d
                        let vh = vp + b * tk * kw + g * d
                        let dkh = dk.map { $0 + b * tk * kw + g * d }
                        let dvh = dv.map { $0 + b * tk * kw + g * d }
                        let p = sp + item * 2 * blockRows * tk, ds = p + blockRows * tk
                        for h in g * group..<(g + 1) * group {
                            let qh = qp + b * tq * qw + h * d
                            let doh = dy + b * tq * qw + h * d
                            let dqh = dq.map { $0 + b * tq * qw + h * d }
                            for i0 in stride(from: 0, to: tq, by: block) {
                                let i1 = min(tq, i0 + block), rows = i1 - i0
                                let keys = ranges[causal ? i0 / block : b * blocksPerSequence + i0 / block]
                                let lo = keys.lowerBound, nk = keys.count
                                guard nk > 0 else { continue }
                                Tape.probabilities(q: qh, qStride: qw, k: kh, kStride: kw, headSize: d, scale: scale, rows: i0..<i1,
                                                   keys: keys, causalOffset: causal ? offset : nil,
                                                   allowed: causal ? nil : fp.baseAddress! + b * tq * tk, keyCount: tk, into: p)
                                // Block rows, restricted to the visible keys.
                                let pb = p + lo, sb = ds + lo
                                let kb = kh + lo * kw, vb = vh + lo * kw
                                // dV += Pᵀ · dO
                                if let dvh {
                                    BLAS.gemm(transA: true, m: nk, n: d, k: rows, a: pb, lda: tk, b: doh + i0 * qw, ldb: qw,
                                              beta: 1, c: dvh + lo * kw, ldc: kw)
                                }
                                guard dqh != nil || dkh != nil else { continue }
                                // dS = P ⊙ (dO · Vᵀ − rowsum) / √D
                                BLAS.gemm(transB: true, m: rows, n: nk, k: d, a: doh + i0 * qw, lda: qw, b: vb, ldb: kw,
                                          c: sb, ldc: tk)
                                for i in 0..<rows {
                                    let pr = pb + i * tk, sr = sb + i * tk
                                    let dot = FastMath.dot(pr, sr, count: nk)
                                    for j in 0..<nk { sr[j] = pr[j] * (sr[j] - dot) * scale }
                                }
                                // dQ += dS · K, dK += dSᵀ · Q
                                if let dqh {
                                    BLAS.gemm(m: rows, n: d, k: nk, a: sb, lda: tk, b: kb, ldb: kw,
                                              beta: 1, c: dqh + i0 * qw, ldc: qw)
                                }
                                if let dkh {
                                    BLAS.gemm(transA: true, m: nk, n: d, k: rows, a: sb, lda: tk, b: qh + i0 * qw, ldb: qw,
                                              beta: 1, c: dkh + lo * kw, ldc: kw)
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Softmax probabilities of query rows `rows` of one (sequence, head) over `keys`,
    /// scores scaled by `scale`: row i goes to `p + (i − rows.lowerBound) · keyCount`, its
    /// entries at their key indices. Causal (`causalOffset` = Tk − Tq) rows read keys up
    /// to their own position and are zero from there to `keys.upperBound`; masked rows
    /// (`allowed`: the sequence's `[Tq, Tk]` flags) read their allowed keys. Forward and
    /// backward both call this, so backward works with exactly forward's probabilities.
    @inline(__always)
    static func probabilities(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, kStride: Int, headSize: Int,
                              scale: Float, rows: Range<Int>, keys: Range<Int>, causalOffset: Int?,
                              allowed: UnsafePointer<UInt8>?, keyCount tk: Int, into p: UnsafeMutablePointer<Float>) {
        let lo = keys.lowerBound, nk = keys.count
        BLAS.gemm(transB: true, m: rows.count, n: nk, k: headSize, alpha: scale, a: q + rows.lowerBound * qStride, lda: qStride,
                  b: k + lo * kStride, ldb: kStride, c: p + lo, ldc: tk)
        for i in rows {
            let row = p + (i - rows.lowerBound) * tk
            if let causalOffset {
                let limit = causalOffset + i + 1
                RowKernels.softmax(row, into: row, count: limit)
                (row + limit).update(repeating: 0, count: keys.upperBound - limit)
            } else {
                maskedSoftmax(row + lo, allowed: allowed! + i * tk + lo, count: nk)
            }
        }
    }

    /// Per block of `block` queries, the keys any of its rows may read: without a mask one
    /// list shared by every sequence (0..<Tk − Tq + i1), with a mask `batch` lists, each
    /// block spanning its first to its last allowed key (empty when none is allowed).
    static func keyRanges(mask: AttentionMask?, batch: Int, queries: Int, keys: Int, block: Int) -> [Range<Int>] {
        let starts = Array(stride(from: 0, to: queries, by: block))
        guard let mask else { return starts.map { 0..<(keys - queries + min(queries, $0 + block)) } }
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(batch * starts.count)
        mask.allowed.withUnsafeBufferPointer { flags in
            for b in 0..<batch {
                for i0 in starts {
                    var lo = keys, hi = 0
                    for i in i0..<min(queries, i0 + block) {
                        let row = flags.baseAddress! + (b * queries + i) * keys
                        var first = 0, end = keys
                        while first < end && row[first] == 0 { first += 1 }
                        while end > first && row[end - 1] == 0 { end -= 1 }
                        if first < end { lo = min(lo, first); hi = max(hi, end) }
                    }
                    ranges.append(lo < hi ? lo..<hi : 0..<0)
                }
            }
        }
        return ranges
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
