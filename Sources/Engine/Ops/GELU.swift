import Foundation

extension Tape {
    /// GELU, tanh approximation (GPT-2's `gelu_new`):
    /// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
    ///
    /// Backward: dx += dy · (0.5 (1 + t) + 0.5 x (1 - t²) √(2/π) (1 + 3 · 0.044715 x²)),
    /// t recomputed from x (cheaper in memory than saving it).
    public func gelu(_ x: Variable) -> Variable {
        let n = x.value.count
        let y = output(x.shape, x)
        let xp = x.value.data, yp = y.value.data
        Parallel.forEach(n, costPerItem: 16) { r in
            for i in r {
                let v = xp[i]
                yp[i] = 0.5 * v * (1 + tanhf(Tape.geluC * (v + 0.044715 * v * v * v)))
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dx = x.gradBuffer().data
            Parallel.forEach(n, costPerItem: 16) { r in
                for i in r {
                    let v = xp[i]
                    let t = tanhf(Tape.geluC * (v + 0.044715 * v * v * v))
                    let dt = Tape.geluC * (1 + 3 * 0.044715 * v * v)
                    dx[i] += dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * dt)
                }
            }
        }
        return y
    }

    /// √(2/π).
    static let geluC: Float = 0.7978845608028654
}
