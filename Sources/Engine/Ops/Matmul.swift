extension Tape {
    /// Batched matrix product with transposes passed to BLAS as flags (never materialised).
    ///
    /// - a: `[..., m, k]` (`[..., k, m]` when `transposeA`)
    /// - b: `[..., k, n]` (`[..., n, k]` when `transposeB`) with a's leading dims, or a
    ///   2-D matrix shared by the whole batch (e.g. a tied output embedding)
    /// - returns: `[..., m, n]` = op(a) · op(b)
    ///
    /// Backward: d op(a) = dC · op(b)ᵀ, d op(b) = op(a)ᵀ · dC, again as flags. A shared
    /// `b` with an untransposed `a` runs as one large GEMM over all rows of the batch.
    public func matmul(_ a: Variable, _ b: Variable, transposeA: Bool = false, transposeB: Bool = false) -> Variable {
        precondition(a.value.rank >= 2 && b.value.rank >= 2, "matmul: operands need rank ≥ 2, got \(a.shape) and \(b.shape)")
        let ar = a.value.rank, br = b.value.rank
        let m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2]
        let k = transposeA ? a.shape[ar - 2] : a.shape[ar - 1]
        let kb = transposeB ? b.shape[br - 1] : b.shape[br - 2]
        let n = transposeB ? b.shape[br - 2] : b.shape[br - 1]
        precondition(k == kb, "matmul: inner dimensions differ, \(a.shape) against \(b.shape)")
        let lead = Array(a.shape.dropLast(2))
        let shared = br == 2
        precondition(shared || Array(b.shape.dropLast(2)) == lead,
                     "matmul: leading dims of \(b.shape) match neither \(a.shape) nor a shared 2-D matrix")
        let batch = Tensor.elementCount(lead)
        let y = output(lead + [m, n], zeroed: false, a, b)   // beta 0 writes every entry
        let av = a.value, bv = b.value, yv = y.value
        let aStride = m * k, bStride = shared ? 0 : k * n, cStride = m * n

        if shared && !transposeA {
            BLAS.gemm(transB: transposeB, m: batch * m, n: n, k: k, a: av.data, b: bv.data, c: yv.data)
        } else {
            for i in 0..<batch {
                BLAS.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                          a: av.data + i * aStride, b: bv.data + i * bStride, c: yv.data + i * cStride)
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad else { return }
            if a.requiresGrad {
                let da = a.gradBuffer()
                if !transposeA {
                    // dA = dC · op(b)ᵀ
                    if shared {
                        BLAS.gemm(transB: !transposeB, m: batch * m, n: k, k: n, a: dy.data, b: bv.data, beta: 1, c: da.data)
                    } else {
                        for i in 0..<batch {
                            BLAS.gemm(transB: !transposeB, m: m, n: k, k: n, a: dy.data + i * cStride,
                                      b: bv.data + i * bStride, beta: 1, c: da.data + i * aStride)
                        }
                    }
                } else {
                    // A is stored [k, m]: dA = op(b) · dCᵀ
                    for i in 0..<batch {
                        BLAS.gemm(transA: transposeB, transB: true, m: k, n: m, k: n, a: bv.data + i * bStride,
                                  b: dy.data + i * cStride, beta: 1, c: da.data + i * aStride)
                    }
                }
            }
            if b.requiresGrad {
                let db = b.gradBuffer()
                if shared && !transposeA {
                    if transposeB {
                        BLAS.gemm(transA: true, m: n, n: k, k: batch * m, a: dy.data, b: av.data, beta: 1, c: db.data)
                    } else {
                        BLAS.gemm(transA: true, m: k, n: n, k: batch * m, a: av.data, b: dy.data, beta: 1, c: db.data)
                    }
                } else {
                    for i in 0..<batch {
                        if transposeB {
                            // B is stored [n, k]: dB = dCᵀ · op(a)
                            BLAS.gemm(transA: true, transB: transposeA, m: n, n: k, k: m, a: dy.data + i * cStride,
                                      b: av.data + i * aStride, beta: 1, c: db.data + i * bStride)
                        } else {
                            // dB = op(a)ᵀ · dC
                            BLAS.gemm(transA: !transposeA, m: k, n: n, k: m, a: av.data + i * aStride,
                                      b: dy.data + i * cStride, beta: 1, c: db.data + i * bStride)
                        }
                    }
                }
            }
        }
        return y
    }
}
