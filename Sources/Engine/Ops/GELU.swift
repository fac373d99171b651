extension Tape {
    /// GELU, tanh approximation (GPT-2's `gelu_new`):
    /// `0.5 · x · (1 + tanh(u))`, u = √(2/π) · (x + 0.044715 x³).
    ///
    /// Computed as x · σ(2u) (the same function, since 1 + tanh u = 2σ(2u)), which
    /// needs one exponential and stays accurate where tanh u is near −1.
    /// Backward: dx += dy · (σ + 2x σ(1 − σ) · √(2/π)(1 + 3 · 0.044715 x²)), σ = σ(2u)
    /// recomputed from x (cheaper in memory than saving it).
    public func gelu(_ x: Variable) -> Variable {
        let n = x.value.count
        let y = output(x.shape, zeroed: false, x)
        let xp = x.value.data, yp = y.value.data
        Parallel.forEach(n, costPerItem: 8) { r in
            for i in r {
                let v = xp[i]
                yp[i] = v * FastMath.sigmoid(2 * Tape.geluC * (v + 0.044715 * v * v * v))
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let (buffer, accumulate) = x.gradBufferForWriting()
            let dx = buffer.data
            Parallel.forEach(n, costPerItem: 8) { r in
                @inline(__always) func local(_ i: Int) -> Float {
                    let v = xp[i], v2 = v * v
                    let s = FastMath.sigmoid(2 * Tape.geluC * (v + 0.044715 * v2 * v))
                    let du = Tape.geluC * (1 + 3 * 0.044715 * v2)
                    return dy[i] * (s + 2 * v * s * (1 - s) * du)
                }
                if accumulate {
                    for i in r { dx[i] += local(i) }
                } else {
                    for i in r { dx[i] = local(i) }
                }
            }
        }
        return y
    }

    /// √(2/π).
    static let geluC: Float = 0.7978845608028654
}
