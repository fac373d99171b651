extension Tape {
    /// SiLU (swish): `x · σ(x)`. Backward: dx += dy · σ(x) (1 + x (1 - σ(x))).
    public func silu(_ x: Variable) -> Variable {
        let n = x.value.count
        let y = output(x.shape, x)
        let xp = x.value.data, yp = y.value.data
        Tape.vectorLoop(n) { i, c in
            let v = FastMath.load(xp + i, count: c)
            FastMath.store(v * FastMath.sigmoid(v), yp + i, count: c)
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dx = x.gradBuffer().data
            Tape.vectorLoop(n) { i, c in
                let v = FastMath.load(xp + i, count: c), s = FastMath.sigmoid(v)
                let g = FastMath.load(dy + i, count: c) * s * (1 + v * (1 - s))
                FastMath.store(FastMath.load(dx + i, count: c) + g, dx + i, count: c)
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
        Tape.vectorLoop(n) { i, c in
            let g = FastMath.load(gp + i, count: c)
            FastMath.store(g * FastMath.sigmoid(g) * FastMath.load(upp + i, count: c), yp + i, count: c)
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dg = gate.requiresGrad ? gate.gradBuffer().data : nil
            let du = up.requiresGrad ? up.gradBuffer().data : nil
            Tape.vectorLoop(n) { i, c in
                let g = FastMath.load(gp + i, count: c), s = FastMath.sigmoid(g)
                let d = FastMath.load(dy + i, count: c)
                if let dg {
                    let v = d * FastMath.load(upp + i, count: c) * s * (1 + g * (1 - s))
                    FastMath.store(FastMath.load(dg + i, count: c) + v, dg + i, count: c)
                }
                if let du {
                    FastMath.store(FastMath.load(du + i, count: c) + d * g * s, du + i, count: c)
                }
            }
        }
        return y
    }

    /// Runs `body(start, count)` over `0..<n` in vectors of `FastMath.width` (the last
    /// one partial), split across threads.
    @inline(__always)
    static func vectorLoop(_ n: Int, _ body: (Int, Int) -> Void) {
        Parallel.forEach(n, costPerItem: 8) { r in
            var i = r.lowerBound
            while i < r.upperBound {
                body(i, min(FastMath.width, r.upperBound - i))
                i += FastMath.width
            }
        }
    }
}
