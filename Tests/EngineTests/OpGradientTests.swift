import Testing
@testable import Engine

/// Finite-difference gradient checks, one per op.
@Suite struct OpGradientTests {
    @Test func matmulAllTransposeFlags() {
        var rng = SeededRandom(seed: 2)
        for ta in [false, true] {
            for tb in [false, true] {
                let a = randomVariable(ta ? [2, 4, 3] : [2, 3, 4], &rng)
                let b = randomVariable(tb ? [2, 5, 4] : [2, 4, 5], &rng)
                checkGradients([a, b]) { t, p in t.matmul(p[0], p[1], transposeA: ta, transposeB: tb) }
                // A 2-D b shared by the batch.
                let s = randomVariable(tb ? [5, 4] : [4, 5], &rng)
                checkGradients([a, s]) { t, p in t.matmul(p[0], p[1], transposeA: ta, transposeB: tb) }
            }
        }
    }

    @Test func addSubMulWithBroadcast() {
        var rng = SeededRandom(seed: 3)
        for bShape in [[2, 3, 4], [3, 4], [4], []] {
            let a = randomVariable([2, 3, 4], &rng), b = randomVariable(bShape, &rng)
            checkGradients([a, b]) { t, p in t.add(p[0], p[1]) }
            checkGradients([a, b]) { t, p in t.sub(p[0], p[1]) }
            checkGradients([a, b]) { t, p in t.mul(p[0], p[1]) }
        }
    }

    @Test func scaleSumMeanReshape() {
        var rng = SeededRandom(seed: 4)
        let x = randomVariable([3, 4], &rng)
        checkGradients([x]) { t, p in t.scale(p[0], -2.5) }
        checkGradients([x]) { t, p in t.sum(t.mul(p[0], p[0])) }
        checkGradients([x]) { t, p in t.mean(t.mul(p[0], p[0])) }
        checkGradients([x]) { t, p in t.mul(t.reshape(p[0], [2, 6]), t.reshape(p[0], [2, 6])) }
    }

    @Test func split() {
        var rng = SeededRandom(seed: 5)
        let x = randomVariable([2, 3, 7], &rng)
        // Only two of the three pieces reach the output: the third gets no gradient.
        checkGradients([x]) { t, p in
            let s = t.split(p[0], sizes: [3, 2, 2])
            return t.add(t.scale(s[0], 2), t.reshape(t.matmul(s[2], s[2], transposeB: true), [2, 3, 3]))
        }
    }

    @Test func embeddingAndGatherRows() {
        var rng = SeededRandom(seed: 6)
        let table = randomVariable([5, 3], &rng)
        // Repeated ids must scatter-add.
        checkGradients([table]) { t, p in t.embedding(ids: [1, 4, 1, 0, 1, 3], shape: [2, 3], table: p[0]) }
        let x = randomVariable([2, 3, 4], &rng)
        checkGradients([x]) { t, p in t.gatherRows(p[0], rows: [5, 0, 5, 2]) }
    }

    @Test func norms() {
        var rng = SeededRandom(seed: 7)
        let x = randomVariable([3, 2, 6], &rng, lo: -2, hi: 2)
        let w = randomVariable([6], &rng, lo: 0.5, hi: 1.5), b = randomVariable([6], &rng)
        checkGradients([x, w, b], eps: 3e-3) { t, p in t.layerNorm(p[0], weight: p[1], bias: p[2], eps: 1e-5) }
        checkGradients([x, w], eps: 3e-3) { t, p in t.rmsNorm(p[0], weight: p[1], eps: 1e-6) }
    }

    @Test func activations() {
        var rng = SeededRandom(seed: 8)
        let x = randomVariable([4, 5], &rng, lo: -3, hi: 3), u = randomVariable([4, 5], &rng, lo: -2, hi: 2)
        checkGradients([x]) { t, p in t.gelu(p[0]) }
        checkGradients([x]) { t, p in t.silu(p[0]) }
        checkGradients([x, u]) { t, p in t.swiglu(gate: p[0], up: p[1]) }
        checkGradients([x]) { t, p in t.softmax(p[0]) }
    }

    @Test func rope() {
        var rng = SeededRandom(seed: 9)
        let x = randomVariable([2, 3, 2 * 4], &rng)
        checkGradients([x]) { t, p in t.rope(p[0], heads: 2, positions: [0, 1, 2, 7, 8, 100], theta: 10_000) }
    }

    @Test func attentionCausalAndGQA() {
        var rng = SeededRandom(seed: 10)
        // heads 4, kvHeads 2, D 3, Tq = Tk = 4
        let q = randomVariable([2, 4, 12], &rng), k = randomVariable([2, 4, 6], &rng), v = randomVariable([2, 4, 6], &rng)
        checkGradients([q, k, v]) { t, p in t.attention(q: p[0], k: p[1], v: p[2], heads: 4, kvHeads: 2) }
        // Tk > Tq (decoding against a cache), plain multi-head.
        let q2 = randomVariable([1, 2, 6], &rng), k2 = randomVariable([1, 5, 6], &rng), v2 = randomVariable([1, 5, 6], &rng)
        checkGradients([q2, k2, v2]) { t, p in t.attention(q: p[0], k: p[1], v: p[2], heads: 2, kvHeads: 2) }
    }

    @Test func attentionAcrossCausalBlocks() {
        var rng = SeededRandom(seed: 14)
        let t = Tape.attentionQueryBlock + 6
        let q = randomVariable([1, t, 4], &rng), k = randomVariable([1, t + 3, 2], &rng), v = randomVariable([1, t + 3, 2], &rng)
        checkGradients([q, k, v]) { t, p in t.attention(q: p[0], k: p[1], v: p[2], heads: 2, kvHeads: 1) }
    }

    @Test func attentionWithCustomMask() {
        var rng = SeededRandom(seed: 11)
        // Non-causal: query 0 sees later keys; query 2 of sequence 1 sees nothing.
        let mask = AttentionMask(batch: 2, queries: 3, keys: 4) { b, i, j in
            if b == 1 && i == 2 { return false }
            return i == 0 ? j >= 1 : (j + i) % 2 == 0 || j == 3
        }
        let q = randomVariable([2, 3, 8], &rng), k = randomVariable([2, 4, 4], &rng), v = randomVariable([2, 4, 4], &rng)
        checkGradients([q, k, v]) { t, p in t.attention(q: p[0], k: p[1], v: p[2], heads: 4, kvHeads: 2, mask: mask) }
    }

    @Test func crossEntropyWithIgnoredRows() {
        var rng = SeededRandom(seed: 12)
        let logits = randomVariable([2, 3, 5], &rng, lo: -3, hi: 3)
        checkGradients([logits]) { t, p in t.crossEntropy(logits: p[0], targets: [4, -100, 0, 2, -100, 1]) }
        checkGradients([logits]) { t, p in t.crossEntropy(logits: p[0], targets: [9, 9, 1, 9, 2, 3], ignoreIndex: 9) }
    }

    @Test func linearCrossEntropyInChunks() {
        var rng = SeededRandom(seed: 14)
        let x = randomVariable([2, 5, 4], &rng, lo: -2, hi: 2)
        let w = randomVariable([7, 4], &rng, lo: -1, hi: 1)
        let targets: [Int32] = [0, 6, 3, 3, 1, 5, 2, 4, 0, 6]
        // Chunks of 3 rows (the last one short) and one chunk of all rows.
        checkGradients([x, w]) { t, p in t.linearCrossEntropy(p[0], p[1], targets: targets, chunk: 3) }
        checkGradients([x, w]) { t, p in t.linearCrossEntropy(p[0], p[1], targets: targets, chunk: 64) }
        // The same value as the projection followed by the plain cross-entropy.
        let t = Tape()
        let fused = t.linearCrossEntropy(x, w, targets: targets, chunk: 3).value.data[0]
        let plain = t.crossEntropy(logits: t.linear(x, w), targets: targets).value.data[0]
        #expect(abs(fused - plain) <= 1e-6 * max(1, abs(plain)))
    }

    @Test func dropout() {
        var rng = SeededRandom(seed: 13)
        let x = randomVariable([4, 6], &rng)
        checkGradients([x]) { t, p in
            var r = SeededRandom(seed: 5)
            return t.dropout(p[0], p: 0.4, rng: &r)
        }
    }
}
