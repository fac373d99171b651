extension Tape {
    /// Elementwise sum with suffix broadcasting (residual connections, biases).
    ///
    /// - a: any shape
    /// - b: a's shape or a suffix of it (repeated over a's leading dims)
    /// - returns: a's shape
    ///
    /// Backward: da += dy, db += dy summed over the broadcast dims.
    public func add(_ a: Variable, _ b: Variable) -> Variable {
        binary(a, b, "add", sign: 1)
    }

    /// Elementwise difference `a - b`, with `b` broadcast as in `add`.
    public func sub(_ a: Variable, _ b: Variable) -> Variable {
        binary(a, b, "sub", sign: -1)
    }

    /// Elementwise product, with `b` broadcast as in `add`.
    ///
    /// Backward: da += dy ⊙ b, db += Σ over the broadcast dims of dy ⊙ a.
    public func mul(_ a: Variable, _ b: Variable) -> Variable {
        let inner = Tape.checkSuffix(a, b, "mul")
        let outer = inner == 0 ? 0 : a.value.count / inner
        let y = output(a.shape, zeroed: false, a, b)
        let ap = a.value.data, bp = b.value.data, yp = y.value.data
        Parallel.forEach(outer, costPerItem: inner) { rows in
            for r in rows {
                let o = r * inner
                for j in 0..<inner { yp[o + j] = ap[o + j] * bp[j] }
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            if a.requiresGrad {
                let da = a.gradBuffer().data
                Parallel.forEach(outer, costPerItem: inner) { rows in
                    for r in rows {
                        let o = r * inner
                        for j in 0..<inner { da[o + j] += dy[o + j] * bp[j] }
                    }
                }
            }
            if b.requiresGrad {
                let db = b.gradBuffer().data
                // Split over b's elements so every worker owns its own accumulators.
                Parallel.forEach(inner, costPerItem: outer) { cols in
                    for r in 0..<outer {
                        let o = r * inner
                        for j in cols { db[j] += dy[o + j] * ap[o + j] }
                    }
                }
            }
        }
        return y
    }

    /// Multiplies every element by the constant `s`. Backward: dx += s · dy.
    public func scale(_ x: Variable, _ s: Float) -> Variable {
        let y = output(x.shape, zeroed: false, x)
        let xp = x.value.data, yp = y.value.data
        let n = x.value.count
        Parallel.forEach(n) { r in for i in r { yp[i] = xp[i] * s } }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dx = x.gradBuffer().data
            Parallel.forEach(n) { r in for i in r { dx[i] += s * dy[i] } }
        }
        return y
    }

    /// Shared forward and backward of `add` and `sub` (`sign` is b's coefficient).
    private func binary(_ a: Variable, _ b: Variable, _ op: String, sign: Float) -> Variable {
        let inner = Tape.checkSuffix(a, b, op)
        let outer = inner == 0 ? 0 : a.value.count / inner
        let y = output(a.shape, zeroed: false, a, b)
        let ap = a.value.data, bp = b.value.data, yp = y.value.data
        Parallel.forEach(outer, costPerItem: inner) { rows in
            for r in rows {
                let o = r * inner
                for j in 0..<inner { yp[o + j] = ap[o + j] + sign * bp[j] }
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            if a.requiresGrad {
                let (buffer, accumulate) = a.gradBufferForWriting()
                let da = buffer.data
                Parallel.forEach(outer * inner) { r in
                    if accumulate {
                        for i in r { da[i] += dy[i] }
                    } else {
                        (da + r.lowerBound).update(from: dy + r.lowerBound, count: r.count)
                    }
                }
            }
            if b.requiresGrad {
                let db = b.gradBuffer().data
                Parallel.forEach(inner, costPerItem: outer) { cols in
                    for r in 0..<outer {
                        let o = r * inner
                        for j in cols { db[j] += sign * dy[o + j] }
                    }
                }
            }
        }
        return y
    }

    /// Checks that b's shape is a suffix of a's and returns b's element count.
    static func checkSuffix(_ a: Variable, _ b: Variable, _ op: String) -> Int {
        precondition(b.value.rank <= a.value.rank && Array(a.shape.suffix(b.value.rank)) == b.shape,
                     "\(op): \(b.shape) is not a suffix of \(a.shape)")
        return b.value.count
    }
}
