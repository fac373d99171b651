extension Tape {
    /// Fully connected layer, the workhorse of every transformer.
    ///
    /// - x: `[..., in]` (viewed as `N × in`)
    /// - w: `[out, in]` (PyTorch `nn.Linear` layout)
    /// - bias: `[out]`, optional
    /// - returns: `[..., out]` = x · wᵀ + bias
    ///
    /// Backward: dx += dy · w, dw += dyᵀ · x, db += Σ_rows dy. A frozen `w`
    /// (no `requiresGrad`) costs no dW matmul; a packed one is unpacked for each product.
    public func linear(_ x: Variable, _ w: Variable, bias: Variable? = nil) -> Variable {
        let inF = w.shape[1], outF = w.shape[0]
        precondition(x.value.lastDim == inF, "linear: input \(x.shape) against weight \(w.shape)")
        var outShape = x.shape
        outShape[outShape.count - 1] = outF
        let y = output(outShape, zeroed: false, x, w, bias)
        projectForward(x, w, bias: bias, into: y.value)
        guard y.requiresGrad else { return y }
        record { [unowned self] in
            guard let dy = y.grad else { return }
            self.projectBackward(dy, x, w, bias: bias)
        }
        return y
    }
}

extension Tape {
    /// y `[N, out]` = x · wᵀ + bias: the dense part every projection shares.
    func projectForward(_ x: Variable, _ w: Variable, bias: Variable?, into y: Tensor) {
        let n = x.value.rows, inF = w.shape[1], outF = w.shape[0]
        if let bias {
            for r in 0..<n { (y.data + r * outF).update(from: bias.value.data, count: outF) }
        }
        BLAS.gemm(transB: true, m: n, n: outF, k: inF, a: x.value.data, b: weightValues(w),
                  beta: bias == nil ? 0 : 1, c: y.data)
    }

    /// The dense projection's backward: dx += dy · w, dw += dyᵀ · x, db += Σ_rows dy, each
    /// only for inputs that require a gradient.
    func projectBackward(_ dy: Tensor, _ x: Variable, _ w: Variable, bias: Variable?) {
        let n = x.value.rows, inF = w.shape[1], outF = w.shape[0]
        if x.requiresGrad {
            let (dx, accumulate) = x.gradBufferForWriting()
            BLAS.gemm(m: n, n: inF, k: outF, a: dy.data, b: weightValues(w), beta: accumulate ? 1 : 0, c: dx.data)
        }
        if w.requiresGrad {
            BLAS.gemm(transA: true, m: outF, n: inF, k: n, a: dy.data, b: x.value.data, beta: 1, c: w.gradBuffer().data)
        }
        if let bias, bias.requiresGrad {
            let db = bias.gradBuffer().data
            for r in 0..<n {
                let row = dy.data + r * outF
                for j in 0..<outF { db[j] += row[j] }
            }
        }
    }
}
