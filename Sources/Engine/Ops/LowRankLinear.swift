/// The low-rank branch a LoRA adapter adds to a projection: `scale · (input · aᵀ) · bᵀ`.
public struct LowRankUpdate {
    /// `[..., in]`: the projection's input, or a dropped-out copy of it.
    public let input: Variable
    /// `[rank, in]`.
    public let a: Variable
    /// `[out, rank]`.
    public let b: Variable
    /// Factor on the branch (LoRA's alpha / rank).
    public let scale: Float

    /// A branch over existing variables.
    public init(input: Variable, a: Variable, b: Variable, scale: Float) {
        self.input = input
        self.a = a
        self.b = b
        self.scale = scale
    }
}

extension Tape {
    /// A projection with a low-rank branch, fused: one output, no separate sum or scale.
    ///
    /// - x: `[..., in]`; w: `[out, in]`; bias: `[out]`, optional
    /// - lowRank: input `[..., in]` (same rows as x), a `[r, in]`, b `[out, r]`
    /// - returns: `[..., out]` = x · wᵀ + bias + scale · (input · aᵀ) · bᵀ
    ///
    /// The branch's product is accumulated straight into the output (BLAS alpha = scale,
    /// beta = 1); only h = input · aᵀ `[N, r]` is saved. Backward: dx += dy · w,
    /// dw += dyᵀ · x, db += Σ dy, dh = scale · dy · b, d(b) += scale · dyᵀ · h,
    /// da += dhᵀ · input, dinput += dh · a. Frozen variables cost nothing.
    public func linear(_ x: Variable, _ w: Variable, bias: Variable? = nil, lowRank: LowRankUpdate) -> Variable {
        let inF = w.shape[1], outF = w.shape[0]
        let u = lowRank.input, a = lowRank.a, b = lowRank.b, s = lowRank.scale
        let rank = a.shape[0]
        precondition(x.value.lastDim == inF, "linear: input \(x.shape) against weight \(w.shape)")
        precondition(a.shape == [rank, inF] && b.shape == [outF, rank] && u.value.count == x.value.count,
                     "linear: low-rank a \(a.shape), b \(b.shape), input \(u.shape) for weight \(w.shape) and input \(x.shape)")
        let n = x.value.rows
        var outShape = x.shape
        outShape[outShape.count - 1] = outF
        let y = output(outShape, zeroed: false, x, w, bias, u, a, b)
        let yv = y.value
        projectForward(x, w, bias: bias, into: yv)
        let h = allocate([n, rank], zeroed: false)
        BLAS.gemm(transB: true, m: n, n: rank, k: inF, a: u.value.data, b: a.value.data, c: h.data)
        BLAS.gemm(transB: true, m: n, n: outF, k: rank, alpha: s, a: h.data, b: b.value.data, beta: 1, c: yv.data)
        guard y.requiresGrad else { return y }
        record { [unowned self] in
            guard let dy = y.grad else { return }
            self.projectBackward(dy, x, w, bias: bias)
            if b.requiresGrad {
                BLAS.gemm(transA: true, m: outF, n: rank, k: n, alpha: s, a: dy.data, b: h.data, beta: 1,
                          c: b.gradBuffer().data)
            }
            guard a.requiresGrad || u.requiresGrad else { return }
            let dh = self.allocate([n, rank], zeroed: false)
            BLAS.gemm(m: n, n: rank, k: outF, alpha: s, a: dy.data, b: b.value.data, c: dh.data)
            if a.requiresGrad {
                BLAS.gemm(transA: true, m: rank, n: inF, k: n, a: dh.data, b: u.value.data, beta: 1, c: a.gradBuffer().data)
            }
            if u.requiresGrad {
                let (du, accumulate) = u.gradBufferForWriting()
                BLAS.gemm(m: n, n: inF, k: rank, a: dh.data, b: a.value.data, beta: accumulate ? 1 : 0, c: du.data)
            }
        }
        return y
    }
}
