extension Tape {
    /// Softmax cross-entropy against integer targets, fused with the log-softmax.
    ///
    /// - logits: `[N, V]` or `[B, T, V]` (rows in order)
    /// - targets: one per row; rows whose target equals `ignoreIndex` (padding, prompt
    ///   tokens) are skipped
    /// - returns: scalar `[]`, the mean over counted rows (0 when none counts)
    ///
    /// Saves only each row's log Σ exp; backward recomputes the softmax:
    /// dlogits = dy · (softmax − onehot(target)) / count on counted rows.
    public func crossEntropy(logits: Variable, targets: [Int32], ignoreIndex: Int32 = -100) -> Variable {
        let vocab = logits.value.lastDim, rows = logits.value.rows
        precondition(targets.count == rows, "crossEntropy: \(targets.count) targets for \(rows) rows of \(logits.shape)")
        var counted = 0
        for (i, t) in targets.enumerated() where t != ignoreIndex {
            precondition(t >= 0 && Int(t) < vocab, "crossEntropy: target \(t) at row \(i) is outside 0..<\(vocab)")
            counted += 1
        }
        let y = output([], logits)
        let lse = allocate([rows], zeroed: false)   // read only on counted rows
        let lp = logits.value.data, sp = lse.data
        targets.withUnsafeBufferPointer { tp in
            Parallel.forEach(rows, costPerItem: 2 * vocab) { rs in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: vocab)
                defer { scratch.deallocate() }
                for r in rs where tp[r] != ignoreIndex {
                    sp[r] = RowKernels.logSumExp(lp + r * vocab, count: vocab, scratch: scratch)
                }
            }
        }
        var total = 0.0
        for (r, t) in targets.enumerated() where t != ignoreIndex {
            total += Double(sp[r] - lp[r * vocab + Int(t)])
        }
        y.value.data[0] = counted == 0 ? 0 : Float(total / Double(counted))
        guard y.requiresGrad, counted > 0 else { return y }
        record {
            guard let dy = y.grad?.data else { return }
            let sp = lse.data
            let g = dy[0] / Float(counted)
            let (buffer, accumulate) = logits.gradBufferForWriting()
            let dl = buffer.data
            targets.withUnsafeBufferPointer { tp in
                Parallel.forEach(rows, costPerItem: 2 * vocab) { rs in
                    for r in rs {
                        let row = lp + r * vocab, out = dl + r * vocab, m = sp[r]
                        if tp[r] == ignoreIndex {
                            if !accumulate { out.update(repeating: 0, count: vocab) }
                            continue
                        }
                        if accumulate {
                            for j in 0..<vocab { out[j] += g * FastMath.exp(row[j] - m) }
                        } else {
                            for j in 0..<vocab { out[j] = g * FastMath.exp(row[j] - m) }
                        }
                        out[Int(tp[r])] -= g
                    }
                }
            }
        }
        return y
    }
}
