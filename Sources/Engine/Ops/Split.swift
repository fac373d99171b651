extension Tape {
    /// Splits the last dimension into consecutive pieces (GPT-2's fused `c_attn`
    /// output into q, k and v).
    ///
    /// - x: `[..., Σ sizes]`
    /// - returns: one `[..., sizes[i]]` per size (copies, so each piece is contiguous)
    ///
    /// Backward: each piece's gradient is added into its columns of dx.
    public func split(_ x: Variable, sizes: [Int]) -> [Variable] {
        let d = x.value.lastDim
        precondition(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == d,
                     "split: sizes \(sizes) do not add up to the last dim of \(x.shape)")
        let rows = x.value.rows
        let xp = x.value.data
        var starts: [Int] = []
        var at = 0
        for s in sizes { starts.append(at); at += s }
        let pieces = sizes.map { s -> Variable in
            var shape = x.shape
            shape[shape.count - 1] = s
            return output(shape, zeroed: false, x)
        }
        for (p, piece) in pieces.enumerated() {
            let w = sizes[p], start = starts[p], yp = piece.value.data
            Parallel.forEach(rows, costPerItem: w) { rs in
                for r in rs { (yp + r * w).update(from: xp + r * d + start, count: w) }
            }
        }
        guard needsGrad(x) else { return pieces }
        record {
            let grads = pieces.map { $0.grad }
            guard grads.contains(where: { $0 != nil }) else { return }
            let dx = x.gradBuffer().data
            for (p, g) in grads.enumerated() {
                guard let dy = g?.data else { continue }
                let w = sizes[p], start = starts[p]
                Parallel.forEach(rows, costPerItem: w) { rs in
                    for r in rs {
                        let src = dy + r * w, dst = dx + r * d + start
                        for j in 0..<w { dst[j] += src[j] }
                    }
                }
            }
        }
        return pieces
    }
}
