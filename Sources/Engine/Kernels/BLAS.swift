import CBLAS

/// Row-major matrix multiply through OpenBLAS: C = alpha · op(A) · op(B) + beta · C.
/// Transposes are passed as flags, never materialised.
///
/// With `Parallel.threads` > 1, a large product is split into column or row bands of C,
/// one per worker, each computed by single-threaded OpenBLAS (see `Parallel`).
public enum BLAS {
    /// Multiply–adds below which a product runs on the calling thread: the hand-off to a
    /// worker costs about as much as a product this size.
    public static let splitThreshold = 1 << 20
    /// The same for a single row of C (`sgemv`, decoding one token): it streams the whole
    /// weight from memory, so even a 576 × 576 projection is worth both cores' bandwidth.
    public static let vectorSplitThreshold = 1 << 16

    /// `op(A)` is m×k, `op(B)` is k×n, `C` is m×n; `lda`/`ldb`/`ldc` are row strides
    /// of the matrices as stored (default: contiguous).
    @inline(__always)
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        if m == 0 || n == 0 { return }
        let lda = lda ?? (transA ? m : k)
        let ldb = ldb ?? (transB ? k : n)
        let ldc = ldc ?? n
        let workers = Parallel.threads
        if workers > 1, m * n * k >= (m == 1 ? vectorSplitThreshold : splitThreshold), !Parallel.insideBLASRegion {
            split(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                  beta: beta, c: c, ldc: ldc, workers: workers)
            return
        }
        raw(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
            beta: beta, c: c, ldc: ldc)
    }

    /// One product, split along the longer side of C into bands aligned to the kernel's
    /// register tiles (16 rows, 16 columns), so no worker runs on edge kernels.
    static func split(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, workers: Int) {
        let alongRows = m >= n
        let length = alongRows ? m : n
        let parts = min(workers, max(1, length / 16))
        if parts <= 1 {
            raw(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                beta: beta, c: c, ldc: ldc)
            return
        }
        func bound(_ w: Int) -> Int { w == parts ? length : (length * w / parts) / 16 * 16 }
        let ap = UncheckedSendable(a), bp = UncheckedSendable(b), cp = UncheckedSendable(c)
        Parallel.run(workers: parts) { w in
            let lo = bound(w), hi = bound(w + 1)
            guard lo < hi else { return }
            if alongRows {
                // Rows lo..<hi of op(A) and of C.
                raw(transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha,
                    a: transA ? ap.value + lo : ap.value + lo * lda, lda: lda, b: bp.value, ldb: ldb,
                    beta: beta, c: cp.value + lo * ldc, ldc: ldc)
            } else {
                // Columns lo..<hi of op(B) and of C.
                raw(transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha, a: ap.value, lda: lda,
                    b: transB ? bp.value + lo * ldb : bp.value + lo, ldb: ldb,
                    beta: beta, c: cp.value + lo, ldc: ldc)
            }
        }
    }

    /// One OpenBLAS call. A single row of C (decoding one token) goes to `sgemv`, which
    /// reads B once; OpenBLAS 0.3.21's `sgemm` would first copy all of B into its packed
    /// layout.
    @inline(__always)
    static func raw(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 1 {
            // c = alpha · op(B)ᵀ · a + beta · c, with op(A)'s single row as the vector
            // (stride lda when A is stored transposed, k × 1).
            cblas_sgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans,
                        Int32(transB ? n : k), Int32(transB ? k : n), alpha, b, Int32(ldb),
                        a, Int32(transA ? lda : 1), beta, c, 1)
            return
        }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// C = A · B (row-major, contiguous, m×k times k×n) by OpenBLAS's own threading with
    /// `threads` threads, bypassing the split: the library's raw speed, for benchmarks.
    /// OpenBLAS is back on one thread afterwards; its threads spin for a while before
    /// they sleep, so let them settle before timing anything else.
    public static func openBLASGemm(threads: Int, m: Int, n: Int, k: Int,
                                    a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        openblas_set_num_threads(Int32(max(1, threads)))
        raw(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n, beta: 0, c: c, ldc: n)
        openblas_set_num_threads(1)
    }

    /// OpenBLAS's build description (core, threading), for benchmark reports.
    public static var configuration: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }
}
