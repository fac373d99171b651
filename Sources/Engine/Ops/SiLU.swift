extension Tape {
    /// SiLU (swish): `x · σ(x)`. Backward: dx += dy · σ(x) (1 + x (1 - σ(x))).
    public func silu(_ x: Variable) -> Variable {
        let n = x.value.count
        let y = output(x.shape, x)
        let xp = x.value.data, yp = y.value.data
        Parallel.forEach(n, costPerItem: 8) { r in
            for i in r { yp[i] = xp[i] * FastMath.sigmoid(xp[i]) }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dx = x.gradBuffer().data
            Parallel.forEach(n, costPerItem: 8) { r in
                for i in r {
                    let s = FastMath.sigmoid(xp[i])
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
        let gp = gate.value.data, upp = up.value.data, yp = y.value.data
        Parallel.forEach(n, costPerItem: 8) { r in
            for i in r { yp[i] = gp[i] * FastMath.sigmoid(gp[i]) * upp[i] }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            if gate.requiresGrad {
                let dg = gate.gradBuffer().data
                Parallel.forEach(n, costPerItem: 8) { r in
                    for i in r {
                        let g = gp[i], s = FastMath.sigmoid(g)
                        dg[i] += dy[i] * upp[i] * s * (1 + g * (1 - s))
                    }
                }
            }
            if up.requiresGrad {
                let du = up.gradBuffer().data
                Parallel.forEach(n, costPerItem: 8) { r in
                    for i in r { du[i] += dy[i] * gp[i] * FastMath.sigmoid(gp[i]) }
                }
            }
        }
        return y
    }
}
