extension Tape {
    /// Looks up rows of an embedding table (token and learned position embeddings).
    ///
    /// - ids: token ids, `Tensor.elementCount(shape)` of them, each in `0..<table.shape[0]`
    /// - shape: the ids' shape, e.g. `[B, T]`
    /// - table: `[vocab, d]`
    /// - returns: `shape + [d]`
    ///
    /// Backward: scatter-add of each output row into its table row (ids may repeat).
    public func embedding(ids: [Int32], shape: [Int], table: Variable) -> Variable {
        precondition(table.value.rank == 2, "embedding: table must be [vocab, d], got \(table.shape)")
        precondition(ids.count == Tensor.elementCount(shape), "embedding: \(ids.count) ids for shape \(shape)")
        let vocab = table.shape[0], d = table.shape[1]
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < vocab, "embedding: id \(id) at position \(i) is outside the table of \(vocab) rows")
        }
        let y = output(shape + [d], zeroed: false, table)
        let tp = table.value.data, yp = y.value.data
        ids.withUnsafeBufferPointer { idp in
            Parallel.forEach(idp.count, costPerItem: d) { rs in
                for r in rs { (yp + r * d).update(from: tp + Int(idp[r]) * d, count: d) }
            }
        }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dt = table.gradBuffer().data
            // Serial: repeated ids make the scatter racy, and it is memory-bound anyway.
            for (r, id) in ids.enumerated() {
                let src = dy + r * d, dst = dt + Int(id) * d
                for j in 0..<d { dst[j] += src[j] }
            }
        }
        return y
    }

    /// Picks rows of x (e.g. the last position of each sequence, or the positions
    /// that carry a classification loss).
    ///
    /// - x: viewed as `[N, d]` with d its last dim
    /// - rows: indices in `0..<N`, repeats allowed
    /// - returns: `[rows.count, d]`
    ///
    /// Backward: scatter-add into the picked rows of dx.
    public func gatherRows(_ x: Variable, rows: [Int]) -> Variable {
        let d = x.value.lastDim, n = x.value.rows
        for (i, r) in rows.enumerated() {
            precondition(r >= 0 && r < n, "gatherRows: row \(r) at position \(i) is outside 0..<\(n) of \(x.shape)")
        }
        let y = output([rows.count, d], zeroed: false, x)
        let xp = x.value.data, yp = y.value.data
        for (i, r) in rows.enumerated() { (yp + i * d).update(from: xp + r * d, count: d) }
        guard y.requiresGrad else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let dx = x.gradBuffer().data
            for (i, r) in rows.enumerated() {
                let src = dy + i * d, dst = dx + r * d
                for j in 0..<d { dst[j] += src[j] }
            }
        }
        return y
    }
}
