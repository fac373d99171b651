import Foundation
import Testing
@testable import Engine

/// Forward values against hand-computed results.
@Suite struct OpForwardTests {
    func close(_ a: [Float], _ b: [Float], _ tol: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tol * max(1, abs($1)) }
    }

    @Test func matmulAndBroadcastArithmetic() {
        let t = Tape()
        let a = Variable(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        let b = Variable(Tensor(shape: [2, 2], scalars: [5, 6, 7, 8]))
        #expect(t.matmul(a, b).value.scalars == [19, 22, 43, 50])
        #expect(t.matmul(a, b, transposeA: true).value.scalars == [26, 30, 38, 44])
        #expect(t.matmul(a, b, transposeB: true).value.scalars == [17, 23, 39, 53])
        let row = Variable(Tensor(shape: [2], scalars: [10, 20]))
        #expect(t.add(a, row).value.scalars == [11, 22, 13, 24])
        #expect(t.sub(a, row).value.scalars == [-9, -18, -7, -16])
        #expect(t.mul(a, row).value.scalars == [10, 40, 30, 80])
        #expect(t.scale(a, 0.5).value.scalars == [0.5, 1, 1.5, 2])
        #expect(t.sum(a).value.scalars == [10] && t.sum(a).shape == [])
        #expect(t.mean(a).value.scalars == [2.5])
        #expect(t.reshape(a, [4]).value.scalars == [1, 2, 3, 4])
    }

    @Test func splitEmbeddingGather() {
        let t = Tape()
        let x = Variable(Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]))
        let parts = t.split(x, sizes: [1, 2])
        #expect(parts[0].value.scalars == [1, 4] && parts[0].shape == [2, 1])
        #expect(parts[1].value.scalars == [2, 3, 5, 6] && parts[1].shape == [2, 2])
        let e = t.embedding(ids: [1, 0, 1], shape: [3], table: x)
        #expect(e.shape == [3, 3] && e.value.scalars == [4, 5, 6, 1, 2, 3, 4, 5, 6])
        #expect(t.gatherRows(x, rows: [1, 1]).value.scalars == [4, 5, 6, 4, 5, 6])
    }

    @Test func norms() {
        let t = Tape()
        let x = Variable(Tensor(shape: [1, 2], scalars: [3, 4]))
        let ones = Variable(Tensor(repeating: 1, shape: [2]))
        let rms = (12.5 as Float).squareRoot()
        #expect(close(t.rmsNorm(x, weight: ones, eps: 0).value.scalars, [3 / rms, 4 / rms]))
        let two = Variable(Tensor(repeating: 2, shape: [2]))
        #expect(close(t.rmsNorm(x, weight: two, eps: 0).value.scalars, [6 / rms, 8 / rms]))
        let y = Variable(Tensor(shape: [3], scalars: [1, 2, 3]))
        let w = Variable(Tensor(repeating: 1, shape: [3])), b = Variable(Tensor(shape: [3], scalars: [0, 1, 0]))
        let s = (1.5 as Float).squareRoot()
        #expect(close(t.layerNorm(y, weight: w, bias: b, eps: 0).value.scalars, [-s, 1, s]))
    }

    @Test func activationsAndSoftmax() {
        let t = Tape()
        let x = Variable(Tensor(shape: [3], scalars: [1, 0, -2]))
        #expect(close(t.gelu(x).value.scalars, [0.8411920, 0, -0.04540231]))
        #expect(close(t.silu(x).value.scalars, [0.7310586, 0, -0.2384058]))
        let up = Variable(Tensor(shape: [3], scalars: [2, 5, -1]))
        #expect(close(t.swiglu(gate: x, up: up).value.scalars, [1.4621172, 0, 0.2384058]))
        let p = t.softmax(Variable(Tensor(shape: [2, 2], scalars: [0, log(2), 1000, 1000])))
        #expect(close(p.value.scalars, [1.0 / 3, 2.0 / 3, 0.5, 0.5]))
        var rng = SeededRandom(seed: 1)
        let big = t.softmax(randomVariable([7, 33], &rng, lo: -20, hi: 20))
        for r in 0..<7 {
            let s = (0..<33).reduce(Float(0)) { $0 + big.value.data[r * 33 + $1] }
            #expect(abs(s - 1) < 1e-5)
        }
    }

    @Test func ropeIsIdentityAtZeroAndRotatesPairs() {
        let t = Tape()
        var rng = SeededRandom(seed: 2)
        let x = randomVariable([1, 2, 8], &rng)
        let y = t.rope(x, heads: 2, positions: [0, 3], theta: 10_000)
        #expect(Array(y.value.scalars.prefix(8)) == Array(x.value.scalars.prefix(8)))
        // D = 4: pair (0, 2) turns by 3 rad, pair (1, 3) by 3 / 100 rad.
        let unit = Variable(Tensor(shape: [1, 1, 4], scalars: [1, 1, 0, 0]))
        let r = t.rope(unit, heads: 1, positions: [3], theta: 10_000).value.scalars
        #expect(close(r, [cos(3), cos(0.03), sin(3), sin(0.03)]))
    }

    @Test func crossEntropyValues() {
        let t = Tape()
        let uniform = Variable(Tensor(zeros: [2, 4]))
        #expect(close(t.crossEntropy(logits: uniform, targets: [1, 3]).value.scalars, [log(4)]))
        let l = Variable(Tensor(shape: [2, 2], scalars: [0, log(3), 5, 5]))
        // Row 0: -log(3/4); row 1 ignored.
        #expect(close(t.crossEntropy(logits: l, targets: [1, -100]).value.scalars, [-log(0.75)]))
        #expect(t.crossEntropy(logits: l, targets: [-100, -100]).value.scalars == [0])
    }

    @Test func dropoutKeepsExpectedFractionAndScales() {
        let t = Tape()
        let x = Variable(Tensor(repeating: 1, shape: [10_000]), requiresGrad: true)
        var rng = SeededRandom(seed: 3)
        #expect(t.dropout(x, p: 0, rng: &rng) === x)
        t.withoutGrad { #expect(t.dropout(x, p: 0.5, rng: &rng) === x) }
        let y = t.dropout(x, p: 0.25, rng: &rng).value.scalars
        let zeros = y.filter { $0 == 0 }.count
        #expect(abs(Float(zeros) / 10_000 - 0.25) < 0.02)
        #expect(y.allSatisfy { $0 == 0 || abs($0 - 4.0 / 3) < 1e-6 })
    }
}
