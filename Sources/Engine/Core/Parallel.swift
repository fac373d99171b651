import CBLAS
import Dispatch
import Foundation
import Synchronization

/// Threading for SafeTune's own kernels and for matrix products.
///
/// OpenBLAS always runs single-threaded: its pthread build keeps idle threads spinning in
/// `sched_yield` for a long time after every call, which steals the cores the
/// element-wise kernels between products run on. `BLAS.gemm` instead splits a large product
/// over the same workers `forEach` uses, each calling single-threaded OpenBLAS.
///
/// Parallel work runs on a `WorkerPool` sized to the thread count (helpers that stay awake
/// between ops); when the pool is busy, on Dispatch's threads.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = 1
    private static let pool = Mutex<WorkerPool?>(nil)
    /// Number of `forEach` bodies that call BLAS and are running now: products issued from
    /// inside one stay on their worker (nested splitting would oversubscribe the cores).
    nonisolated(unsafe) private static var blasRegions = 0
    private static let regionLock = NSLock()

    /// Threads used by SafeTune's kernels and by split matrix products.
    public static var threads: Int { _threads }

    /// Whether a `forEach(callsBLAS: true)` body is running somewhere.
    static var insideBLASRegion: Bool { regionLock.withLock { blasRegions > 0 } }

    /// Sets the thread count for SafeTune's kernels and matrix products.
    /// Call once at start-up, before any work runs.
    public static func setThreads(_ n: Int) {
        _threads = max(1, n)
        openblas_set_num_threads(1)
        let helpers = _threads - 1
        let replaced = pool.withLock { current -> WorkerPool? in
            guard current?.helpers != helpers else { return nil }
            let old = current
            current = helpers > 0 ? WorkerPool(helpers: helpers) : nil
            return old
        }
        replaced?.retire()
    }

    /// Runs `body` over `0..<n` split into contiguous chunks, one per thread, when
    /// `n * costPerItem` is large enough to pay for the hand-off; inline otherwise.
    ///
    /// `callsBLAS`: the body calls BLAS itself; its products then run on the calling
    /// worker alone instead of being split again.
    public static func forEach(_ n: Int, costPerItem: Int = 1, callsBLAS: Bool = false,
                               _ body: (Range<Int>) -> Void) {
        let workers = min(_threads, n)
        if workers <= 1 || n * costPerItem < 32_768 {
            body(0..<n)
            return
        }
        if callsBLAS { regionLock.withLock { blasRegions += 1 } }
        defer { if callsBLAS { regionLock.withLock { blasRegions -= 1 } } }
        run(workers: workers) { w in
            let lo = n * w / workers, hi = n * (w + 1) / workers
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Runs `body(w)` for every `w` in `0..<workers` concurrently and waits for all.
    static func run(workers: Int, _ body: (Int) -> Void) {
        if let pool = pool.withLock({ $0 }), pool.run(workers: workers, body) { return }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in box.value(w) }
        }
    }
}

/// Carries a value across a concurrency boundary where the caller guarantees
/// disjoint access (each worker touches its own rows).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
