import Testing
@testable import Engine

/// Ops that skip zero-filling (outputs they overwrite, fresh gradient buffers) must give
/// the same numbers on a tape whose recycled buffers hold a previous step's values.
@Suite struct PoolReuseTests {
    /// A small transformer-like step touching every op that writes without zeroing; the
    /// caller resets the tape.
    func step(_ tape: Tape, ids: [Int32], params: [Variable], mask: AttentionMask) -> [[Float]] {
        for p in params { p.grad = nil }
        let (table, w, bias, a, b, g, beta) = (params[0], params[1], params[2], params[3], params[4], params[5], params[6])
        let x = tape.embedding(ids: ids, shape: [2, 6], table: table)
        let n = tape.layerNorm(x, weight: g, bias: beta, eps: 1e-5)
        let qkv = tape.linear(n, w, bias: bias, lowRank: LowRankUpdate(input: n, a: a, b: b, scale: 2))
        let parts = tape.split(qkv, sizes: [8, 8, 8])
        let h = tape.attention(q: parts[0], k: parts[1], v: parts[2], heads: 2, kvHeads: 2, mask: mask)
        let r = tape.add(x, tape.scale(tape.gelu(h), 0.5))
        let logits = tape.linear(tape.rmsNorm(r, weight: g, eps: 1e-5), table)
        // Which rows are ignored depends on the ids, so it differs between the two steps.
        let targets: [Int32] = ids.map { $0 % 3 == 0 ? -100 : ($0 + 1) % 10 }
        let loss = tape.crossEntropy(logits: logits, targets: targets)
        tape.backward(loss)
        return [loss.value.scalars, logits.value.scalars] + params.map { $0.grad?.scalars ?? [] }
    }

    @Test func recycledBuffersGiveTheSameStep() {
        var rng = SeededRandom(seed: 11)
        let params = [randomVariable([10, 8], &rng), randomVariable([24, 8], &rng), randomVariable([24], &rng),
                      randomVariable([2, 8], &rng), randomVariable([24, 2], &rng),
                      randomVariable([8], &rng, lo: 0.5, hi: 1.5), randomVariable([8], &rng)]
        let mask = AttentionMask(batch: 2, queries: 6, keys: 6) { b, i, j in j <= i && (b == 0 || j >= 2) }
        let ids: [Int32] = [1, 4, 2, 9, 0, 3, 7, 7, 5, 1, 8, 6]
        let fresh = step(Tape(), ids: ids, params: params, mask: mask)
        let reused = Tape()
        // A different first step leaves other values in every recycled buffer.
        _ = step(reused, ids: ids.reversed(), params: params, mask: .causal(batch: 2, queries: 6, keys: 6))
        reused.reset()   // after the step's variables are gone, so every buffer is recycled
        let again = step(reused, ids: ids, params: params, mask: mask)
        #expect(again == fresh)
        #expect(fresh.allSatisfy { !$0.isEmpty })
    }
}
