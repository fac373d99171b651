import Testing
@testable import Engine

@Suite struct BLASSplitTests {
    /// Splitting a product into bands of C (rows or columns, every transpose, strided
    /// operands, beta 0 and 1) gives what one unsplit call gives.
    @Test func splitMatchesOneCall() {
        var rng = SeededRandom(seed: 7)
        for (m, n, k) in [(200, 72, 40), (40, 333, 24), (17, 130, 9)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5, ldc = n + 2
                    let a = Tensor(zeros: [(transA ? k : m) * lda]), b = Tensor(zeros: [(transB ? n : k) * ldb])
                    rng.fillUniform(a, -1, 1)
                    rng.fillUniform(b, -1, 1)
                    let start = Tensor(zeros: [m * ldc])
                    rng.fillUniform(start, -1, 1)
                    for beta: Float in [0, 1] {
                        let one = start.copy(), split = start.copy()
                        BLAS.raw(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a.data, lda: lda,
                                 b: b.data, ldb: ldb, beta: beta, c: one.data, ldc: ldc)
                        BLAS.split(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a.data, lda: lda,
                                   b: b.data, ldb: ldb, beta: beta, c: split.data, ldc: ldc, workers: 3)
                        let worst = zip(one.scalars, split.scalars).map { abs($0 - $1) }.max() ?? 0
                        #expect(worst < 1e-5, "m \(m) n \(n) k \(k) transA \(transA) transB \(transB) beta \(beta)")
                    }
                }
            }
        }
    }

    /// One row of C (the matrix–vector path) against a direct sum, every transpose and beta.
    @Test func singleRowMatchesDirectSum() {
        var rng = SeededRandom(seed: 8)
        let (n, k) = (37, 23)
        for transA in [false, true] {
            for transB in [false, true] {
                let lda = transA ? 3 : k, ldb = (transB ? k : n) + 2
                let a = Tensor(zeros: [transA ? k * lda : k]), b = Tensor(zeros: [(transB ? n : k) * ldb])
                rng.fillUniform(a, -1, 1)
                rng.fillUniform(b, -1, 1)
                for beta: Float in [0, 1] {
                    let c = Tensor(zeros: [n])
                    rng.fillUniform(c, -1, 1)
                    var expected = [Float](repeating: 0, count: n)
                    for j in 0..<n {
                        var s: Float = 0
                        for p in 0..<k {
                            let av = transA ? a.data[p * lda] : a.data[p]
                            let bv = transB ? b.data[j * ldb + p] : b.data[p * ldb + j]
                            s += av * bv
                        }
                        expected[j] = 0.5 * s + beta * c.data[j]
                    }
                    BLAS.gemm(transA: transA, transB: transB, m: 1, n: n, k: k, alpha: 0.5, a: a.data, lda: lda,
                              b: b.data, ldb: ldb, beta: beta, c: c.data)
                    let worst = zip(c.scalars, expected).map { abs($0 - $1) }.max() ?? 0
                    #expect(worst < 1e-4, "transA \(transA) transB \(transB) beta \(beta)")
                }
            }
        }
    }
}
