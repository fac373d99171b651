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
