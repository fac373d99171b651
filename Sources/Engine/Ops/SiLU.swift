import Foundation

extension Tape {
    /// SiLU (swish): `x · σ(x)`. Backward: dx += dy · σ(x) (1 + x (1 - σ(x))).
    public func silu(_ x: Variable) -> Variable {
        let n = x.value.count
        let y = output(x.shape, x)
        let xp = x.value.data, yp = y.value.data
        Parallel.forEach(n, costPerItem: 16) { r in
            for i in r { yp[i] = xp[i] * Tape.sigmoid(xp[i]) }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dx = x.gradBuffer().data
            Parallel.forEach(n, costPerItem: 16) { r in
                for i in r {
                    let s = Tape.sigmoid(xp[i])
                    dx[i] += dy[i] * s * (1 + xp[i] * (1 - s))
                }
            }
        }
        return y
    }

    /// The Llama MLP gate, fused: `silu(gate) ⊙ up`.
    ///
    /// - gate, up: the same shape
    /// - returns: that shape
    ///
    /// Backward: dgate += dy · up · σ(g)(1 + g(1 - σ(g))), dup += dy · silu(g).
    public func swiglu(gate: Variable, up: Variable) -> Variable {
        precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) and up \(up.shape) differ")
        let n = gate.value.count
        let y = output(gate.shape, gate, up)
        let gp = gate.value.data, up_ = up.value.data, yp = y.value.data
        Parallel.forEach(n, costPerItem: 16) { r in
            for i in r { yp[i] = gp[i] * Tape.sigmoid(gp[i]) * up_[i] }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dg = gate.requiresGrad ? gate.gradBuffer().data : nil
            let du = up.requiresGrad ? up.gradBuffer().data : nil
            Parallel.forEach(n, costPerItem: 16) { r in
                for i in r {
                    let g = gp[i], s = Tape.sigmoid(g)
                    if let dg { dg[i] += dy[i] * up_[i] * s * (1 + g * (1 - s)) }
                    if let du { du[i] += dy[i] * g * s }
                }
            }
        }
        return y
    }

    /// Logistic function, stable for large |x|.
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        1 / (1 + expf(-x))
    }
}
