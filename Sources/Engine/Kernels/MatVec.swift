/// y = alpha · W · x + beta · y for W `[rows, cols]` row-major with row stride `ldw`: one
/// token through a projection while decoding. The product reads every weight once and is
/// bound by memory bandwidth, so it runs four rows at a time: each load of x serves four
/// rows and four independent sums keep loads in flight. OpenBLAS's `sgemv` reached about
/// half of llama.cpp's decode rate on SmolLM2 (`docs/performance.md`).
enum MatVec {
    static func multiply(rows: Int, cols: Int, alpha: Float, w: UnsafePointer<Float>, ldw: Int,
                         x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>) {
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
            UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
        }
        @inline(__always) func store(_ s: Float, _ r: Int) {
            y[r] = beta == 0 ? alpha * s : alpha * s + beta * y[r]
        }
        var r = 0
        while r + 4 <= rows {
            let w0 = w + r * ldw, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var j = 0
            while j + 8 <= cols {
                let v = load(x + j)
                a0 += load(w0 + j) * v
                a1 += load(w1 + j) * v
                a2 += load(w2 + j) * v
                a3 += load(w3 + j) * v
                j += 8
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while j < cols {
                s0 += w0[j] * x[j]; s1 += w1[j] * x[j]; s2 += w2[j] * x[j]; s3 += w3[j] * x[j]
                j += 1
            }
            store(s0, r); store(s1, r + 1); store(s2, r + 2); store(s3, r + 3)
            r += 4
        }
        while r < rows {
            store(FastMath.dot(w + r * ldw, x, count: cols), r)
            r += 1
        }
    }
}
