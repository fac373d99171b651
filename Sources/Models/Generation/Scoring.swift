import Engine
import Foundation

extension TransformerModel {
    /// log p(ids[i] | ids[..<i]) for i in 1..<ids.count: how likely the model finds each
    /// token after its prefix (one forward, no gradients). Empty for fewer than two ids.
    public func tokenLogprobs(_ ids: [Int]) throws(ModelError) -> [Float] {
        let input = ids.map { Int32(clamping: $0) }
        try validate(ids: input, length: input.count)
        if ids.count < 2 { return [] }
        let tape = Tape()
        return tape.withoutGrad {
            let n = ids.count - 1
            let logits = logits(tape: tape, hidden: hiddenStates(tape: tape, ids: input, batch: 1, length: ids.count),
                                rows: Array(0..<n)).value
            let v = config.vocabSize
            var out = [Float](repeating: 0, count: n)
            for t in 0..<n {
                let row = logits.data + t * v
                var m = -Float.infinity
                for j in 0..<v { m = max(m, row[j]) }
                var s: Float = 0
                for j in 0..<v { s += expf(row[j] - m) }
                out[t] = row[ids[t + 1]] - m - logf(s)
            }
            return out
        }
    }
}

extension TransformerModel {
    /// How the summed log-probability of `ids[targets]` (teacher forcing) changes, to first
    /// order, when the token at each of `positions` is swapped for another: row `i` holds,
    /// for every vocabulary entry v, the gradient with respect to a one-hot input at
    /// `positions[i]`, i.e. `E[v] · ∂logp/∂x` with E the token embedding table. This is
    /// the ranking GCG uses to pick replacement tokens. `[positions.count][vocab]`.
    ///
    /// One forward and one backward; the weights get no gradient when they are frozen.
    public func oneHotGradients(_ ids: [Int], targets: Range<Int>, positions: [Int]) throws(ModelError) -> [[Float]] {
        let input = ids.map { Int32(clamping: $0) }
        try validate(ids: input, length: input.count)
        precondition(targets.lowerBound >= 1 && targets.upperBound <= ids.count, "oneHotGradients: targets \(targets) outside 1..<\(ids.count)")
        precondition(positions.allSatisfy { ids.indices.contains($0) }, "oneHotGradients: positions outside the sequence")
        let n = ids.count
        let tape = Tape()
        let pos = (0..<n).map { Int32($0) }
        // The embeddings become a leaf that collects the gradient.
        let x = Variable(tape.withoutGrad { embed(tape: tape, ids: input, positions: pos, batch: 1, length: n) }.value,
                         requiresGrad: true)
        var labels = [Int32](repeating: -100, count: n)
        for t in targets { labels[t] = input[t] }
        let logits = logits(tape: tape, hidden: transform(tape: tape, x, positions: pos, mask: nil, cache: nil))
        let loss = tape.crossEntropy(logits: logits, targets: Self.shiftedTargets(labels, batch: 1, length: n))
        tape.backward(loss)
        guard let g = x.grad else { return positions.map { _ in [Float](repeating: 0, count: tokenEmbedding.rows) } }
        // loss is the mean negative log-probability: d logp / dx = -count · d loss / dx.
        let d = config.hiddenSize, scale = -Float(targets.count)
        let rows = Tensor(zeros: [positions.count, d])
        for (i, p) in positions.enumerated() {
            for j in 0..<d { rows.data[i * d + j] = scale * g.data[p * d + j] }
        }
        let product = tape.withoutGrad { tape.matmul(Variable(rows), tokenEmbedding.table, transposeB: true) }.value
        let v = tokenEmbedding.rows
        return (0..<positions.count).map { i in Array(UnsafeBufferPointer(start: product.data + i * v, count: v)) }
    }
}
