import CBLAS
import Dispatch

/// Threading for the kernels BLAS does not cover, and BLAS's own thread count.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = 1
    /// Threads used by non-BLAS kernels and by OpenBLAS.
    public static var threads: Int { _threads }

    /// Sets the thread count for OpenBLAS and for SafeTune's own kernels.
    /// Call once at start-up, before any work runs.
    public static func setThreads(_ n: Int) {
        _threads = max(1, n)
        openblas_set_num_threads(Int32(_threads))
    }

    /// Runs `body` over `0..<n` split into contiguous chunks, one per thread, when
    /// `n * costPerItem` is large enough to pay for the hand-off; inline otherwise.
    ///
    /// `callsBLAS`: the body calls BLAS itself. OpenBLAS then runs single-threaded
    /// for the duration, so the workers do not each spawn a full set of BLAS threads
    /// (oversubscription); the thread count is restored afterwards.
    public static func forEach(_ n: Int, costPerItem: Int = 1, callsBLAS: Bool = false,
                               _ body: (Range<Int>) -> Void) {
        let workers = min(_threads, n)
        if workers <= 1 || n * costPerItem < 32_768 {
            body(0..<n)
            return
        }
        if callsBLAS { openblas_set_num_threads(1) }
        defer { if callsBLAS { openblas_set_num_threads(Int32(_threads)) } }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = n * w / workers, hi = n * (w + 1) / workers
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}

/// Carries a value across a concurrency boundary where the caller guarantees
/// disjoint access (each worker touches its own rows).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
