extension Tape {
    /// Sum of all elements, as a scalar of shape `[]`. Backward: dx += dy everywhere.
    public func sum(_ x: Variable) -> Variable {
        reduce(x, factor: 1)
    }

    /// Mean of all elements, as a scalar of shape `[]`. Backward: dx += dy / count.
    public func mean(_ x: Variable) -> Variable {
        reduce(x, factor: 1 / Float(max(x.value.count, 1)))
    }

    /// `factor · Σ x`, accumulated in Double so long sums keep Float precision.
    private func reduce(_ x: Variable, factor: Float) -> Variable {
        let y = output([], x)
        let xp = x.value.data
        var s = 0.0
        for i in 0..<x.value.count { s += Double(xp[i]) }
        y.value.data[0] = Float(s * Double(factor))
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let g = dy[0] * factor
            let dx = x.gradBuffer().data
            Parallel.forEach(x.value.count) { r in for i in r { dx[i] += g } }
        }
        return y
    }
}
