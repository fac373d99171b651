import Foundation
import Testing
@testable import Engine

/// Attention against a direct per-element reference, in Double.
@Suite struct AttentionTests {
    /// out[b, i, h·D + e] = Σ_j softmax_j(q·k / √D over allowed j) v[j], zeros when none allowed.
    func reference(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, kvHeads: Int,
                   allowed: (Int, Int, Int) -> Bool) -> [Float] {
        let bsz = q.shape[0], tq = q.shape[1], tk = k.shape[1], d = q.shape[2] / heads
        var out = [Float](repeating: 0, count: q.count)
        for b in 0..<bsz {
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                for i in 0..<tq {
                    var s = [Double](repeating: -.infinity, count: tk)
                    for j in 0..<tk where allowed(b, i, j) {
                        var dot = 0.0
                        for e in 0..<d {
                            dot += Double(q.data[(b * tq + i) * heads * d + h * d + e]) * Double(k.data[(b * tk + j) * kvHeads * d + g * d + e])
                        }
                        s[j] = dot / Double(d).squareRoot()
                    }
                    let m = s.max() ?? -.infinity
                    guard m > -.infinity else { continue }
                    let w = s.map { exp($0 - m) }
                    let z = w.reduce(0, +)
                    for e in 0..<d {
                        var acc = 0.0
                        for j in 0..<tk { acc += w[j] / z * Double(v.data[(b * tk + j) * kvHeads * d + g * d + e]) }
                        out[(b * tq + i) * heads * d + h * d + e] = Float(acc)
                    }
                }
            }
        }
        return out
    }

    func maxError(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func causalGQAMatchesReference() {
        var rng = SeededRandom(seed: 1)
        let q = randomVariable([2, 5, 4 * 3], &rng), k = randomVariable([2, 5, 2 * 3], &rng), v = randomVariable([2, 5, 2 * 3], &rng)
        let y = Tape().attention(q: q, k: k, v: v, heads: 4, kvHeads: 2)
        let ref = reference(q.value, k.value, v.value, heads: 4, kvHeads: 2) { _, i, j in j <= i }
        #expect(maxError(y.value.scalars, ref) < 1e-5)
        // The explicit causal mask gives the same result.
        let m = Tape().attention(q: q, k: k, v: v, heads: 4, kvHeads: 2, mask: .causal(batch: 2, queries: 5, keys: 5))
        #expect(maxError(m.value.scalars, y.value.scalars) < 1e-6)
    }

    @Test func causalBlocksMatchReferenceAcrossBlockBoundaries() {
        var rng = SeededRandom(seed: 5)
        let t = Tape.attentionQueryBlock * 2 + 13
        let q = randomVariable([1, t, 6], &rng), k = randomVariable([1, t + 7, 3], &rng), v = randomVariable([1, t + 7, 3], &rng)
        let y = Tape().attention(q: q, k: k, v: v, heads: 2, kvHeads: 1)
        let ref = reference(q.value, k.value, v.value, heads: 2, kvHeads: 1) { _, i, j in j <= i + 7 }
        #expect(maxError(y.value.scalars, ref) < 1e-5)
        // Executed work: blocks of 64 query rows against the keys they can see.
        let flops = Tape.attentionForwardFlops(batch: 1, queries: t, keys: t + 7, heads: 2, headSize: 3, causal: true)
        #expect(flops == 4 * 2 * 3 * Double(64 * 71 + 64 * 135 + 13 * 148))
    }

    @Test func customMaskWithEmptyRowAndLookAhead() {
        var rng = SeededRandom(seed: 2)
        let rule: (Int, Int, Int) -> Bool = { b, i, j in
            if b == 0 && i == 1 { return false }   // no key at all
            return i == 0 ? j >= 2 : j != i         // position 0 reads later positions only
        }
        let mask = AttentionMask(batch: 2, queries: 3, keys: 3, allowed: rule)
        let q = randomVariable([2, 3, 8], &rng), k = randomVariable([2, 3, 8], &rng), v = randomVariable([2, 3, 8], &rng)
        let y = Tape().attention(q: q, k: k, v: v, heads: 2, kvHeads: 2, mask: mask)
        #expect(maxError(y.value.scalars, reference(q.value, k.value, v.value, heads: 2, kvHeads: 2, allowed: rule)) < 1e-5)
        #expect(y.value.scalars[8..<16].allSatisfy { $0 == 0 })
    }

    /// A mask whose blocks see only part of the keys (sliding window, packed documents,
    /// padded queries): the blocked kernel skips the invisible keys and still matches the
    /// reference, forward and backward.
    @Test func maskedBlocksSkipInvisibleKeys() {
        var rng = SeededRandom(seed: 6)
        let t = Tape.attentionQueryBlock + 6
        let rule: (Int, Int, Int) -> Bool = { b, i, j in
            if b == 0 { return j <= i && j >= i - 9 }            // sliding window of 10
            if i >= t - 4 { return false }                        // padded queries
            return j <= i && (j < 30) == (i < 30)                 // two packed documents
        }
        let mask = AttentionMask(batch: 2, queries: t, keys: t, allowed: rule)
        let ranges = Tape.keyRanges(mask: mask, batch: 2, queries: t, keys: t, block: Tape.attentionQueryBlock)
        #expect(ranges == [0..<64, 55..<t, 0..<64, 30..<(t - 4)])
        let q = randomVariable([2, t, 2], &rng), k = randomVariable([2, t, 1], &rng), v = randomVariable([2, t, 1], &rng)
        let y = Tape().attention(q: q, k: k, v: v, heads: 2, kvHeads: 1, mask: mask)
        #expect(maxError(y.value.scalars, reference(q.value, k.value, v.value, heads: 2, kvHeads: 1, allowed: rule)) < 1e-5)
        checkGradients([q, k, v], eps: 1e-2, tolerance: 2e-2) { tape, p in
            tape.attention(q: p[0], k: p[1], v: p[2], heads: 2, kvHeads: 1, mask: mask)
        }
    }

    /// `keyBatch`: three queries read sequences 2, 0 and 2 of a four-sequence cache, each up
    /// to its own length, as batched decoding feeds some of a cache's slots.
    @Test func keyBatchReadsTheNamedSequences() {
        var rng = SeededRandom(seed: 7)
        let q = randomVariable([3, 1, 8], &rng), k = randomVariable([4, 6, 4], &rng), v = randomVariable([4, 6, 4], &rng)
        let rows = [2, 0, 2], lengths = [5, 2, 3]
        let rule: (Int, Int, Int) -> Bool = { b, _, j in j < lengths[b] }
        let mask = AttentionMask(batch: 3, queries: 1, keys: 6, allowed: rule)
        let tape = Tape()
        let y = tape.withoutGrad { tape.attention(q: q, k: k, v: v, heads: 2, kvHeads: 1, mask: mask, keyBatch: rows) }
        let pick = { (t: Tensor) in Tensor(shape: [3, 6, 4], scalars: rows.flatMap { Array(t.scalars[$0 * 24..<($0 + 1) * 24]) }) }
        let ref = reference(q.value, pick(k.value), pick(v.value), heads: 2, kvHeads: 1, allowed: rule)
        #expect(maxError(y.value.scalars, ref) < 1e-5)
    }

    @Test func decodingAgainstLongerKeysMatchesFullCausalRows() {
        var rng = SeededRandom(seed: 3)
        let q = randomVariable([1, 6, 8], &rng), k = randomVariable([1, 6, 4], &rng), v = randomVariable([1, 6, 4], &rng)
        let full = Tape().attention(q: q, k: k, v: v, heads: 2, kvHeads: 1)
        // The last two queries alone, against all six keys (a KV cache).
        let tail = Variable(q.value.reshaped([6, 8]).slice(4..<6).reshaped([1, 2, 8]))
        let step = Tape().attention(q: tail, k: k, v: v, heads: 2, kvHeads: 1)
        #expect(maxError(step.value.scalars, Array(full.value.scalars[32..<48])) < 1e-6)
    }

    @Test func parallelMatchesSerial() {
        var rng = SeededRandom(seed: 4)
        let q = randomVariable([4, 32, 64], &rng, requiresGrad: true), k = randomVariable([4, 32, 32], &rng)
        let v = randomVariable([4, 32, 32], &rng)
        func run() -> ([Float], [Float]) {
            q.grad = nil
            let t = Tape()
            let y = t.attention(q: q, k: k, v: v, heads: 8, kvHeads: 4)
            t.backward(t.sum(t.mul(y, y)))
            return (y.value.scalars, q.grad?.scalars ?? [])
        }
        let serial = run()
        Parallel.setThreads(2)
        let parallel = run()
        Parallel.setThreads(1)
        #expect(maxError(serial.0, parallel.0) < 1e-5)
        #expect(maxError(serial.1, parallel.1) < 1e-4)
    }
}
