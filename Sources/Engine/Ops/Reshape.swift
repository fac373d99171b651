extension Tape {
    /// The same elements under another shape (same element count). The value is a
    /// view of x's storage, so nothing is copied. Backward: dx += dy.
    public func reshape(_ x: Variable, _ shape: [Int]) -> Variable {
        precondition(Tensor.elementCount(shape) == x.value.count, "reshape: cannot view \(x.shape) as \(shape)")
        let needs = needsGrad(x)
        let y = Variable(x.value.reshaped(shape), requiresGrad: needs)
        guard needs else { return y }
        y.pool = self
        record {
            guard let dy = y.grad?.data else { return }
            let dx = x.gradBuffer().data
            Parallel.forEach(x.value.count) { r in for i in r { dx[i] += dy[i] } }
        }
        return y
    }
}
