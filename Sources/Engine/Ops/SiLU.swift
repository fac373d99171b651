extension Tape {
    /// SiLU (swish): `x · σ(x)`. Backward: dx += dy · σ(x) (1 + x (1 - σ(x))).
    public func silu(_ x: Variable) -> Variable {
        let n = x.value.count
        let y = output(x.shape, zeroed: false, x)
        let xp = x.value.data, yp = y.value.data
        Parallel.forEach(n, costPerItem: 8) { r in
            for i in r { yp[i] = xp[i] * FastMath.sigmoid(xp[i]) }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let (buffer, accumulate) = x.gradBufferForWriting()
            let dx = buffer.data
            Parallel.forEach(n, costPerItem: 8) { r in
                @inline(__always) func local(_ i: Int) -> Float {
                    let s = FastMath.sigmoid(xp[i])
                    return dy[i] * s * (1 + xp[i] * (1 - s))
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

    /// The Llama MLP gate, fused: `silu(gate) ⊙ up`.
    ///
    /// - gate, up: the same shape
    /// - returns: that shape
    ///
    /// Backward: dgate += dy · up · σ(g)(1 + g(1 - σ(g))), dup += dy · silu(g).
    public func swiglu(gate: Variable, up: Variable) -> Variable {
        precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) and up \(up.shape) differ")
        let n = gate.value.count
        let y = output(gate.shape, zeroed: false, gate, up)
        let gp = gate.value.data, upp = up.value.data, yp = y.value.data
        Parallel.forEach(n, costPerItem: 8) { r in
            for i in r { yp[i] = gp[i] * FastMath.sigmoid(gp[i]) * upp[i] }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            if gate.requiresGrad {
                let (buffer, accumulate) = gate.gradBufferForWriting()
                let dg = buffer.data
                Parallel.forEach(n, costPerItem: 8) { r in
                    @inline(__always) func local(_ i: Int) -> Float {
                        let g = gp[i], s = FastMath.sigmoid(g)
                        return dy[i] * upp[i] * s * (1 + g * (1 - s))
                    }
                    if accumulate {
                        for i in r { dg[i] += local(i) }
                    } else {
                        for i in r { dg[i] = local(i) }
                    }
                }
            }
            if up.requiresGrad {
                let (buffer, accumulate) = up.gradBufferForWriting()
                let du = buffer.data
                Parallel.forEach(n, costPerItem: 8) { r in
                    if accumulate {
                        for i in r { du[i] += dy[i] * gp[i] * FastMath.sigmoid(gp[i]) }
                    } else {
                        for i in r { du[i] = dy[i] * gp[i] * FastMath.sigmoid(gp[i]) }
                    }
                }
            }
        }
        return y
    }
}
