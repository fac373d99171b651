import Foundation
import Synchronization
import Testing
@testable import Engine

/// The helper threads behind `Parallel.run`: every worker index runs once per job, the
/// caller waits for all of them, and a busy or retired pool says so instead of running.
@Suite struct WorkerPoolTests {
    /// Counts per worker index, written by the workers of one job (each its own slot).
    final class Slots: @unchecked Sendable {
        var counts: [Int]
        init(_ n: Int) { counts = [Int](repeating: 0, count: n) }
    }

    @Test func everyWorkerRunsOncePerJob() {
        let pool = WorkerPool(helpers: 2)
        defer { pool.retire() }
        for workers in [3, 2, 1] {
            let slots = Slots(3)
            for _ in 0..<2_000 {
                let ran = pool.run(workers: workers) { w in slots.counts[w] += 1 }
                #expect(ran)
            }
            // Helpers beyond the job's worker count take no share.
            #expect(slots.counts == (0..<3).map { $0 < workers ? 2_000 : 0 })
        }
    }

    @Test func waitsForSlowHelpers() {
        let pool = WorkerPool(helpers: 1)
        defer { pool.retire() }
        let slots = Slots(2)
        for round in 1...20 {
            #expect(pool.run(workers: 2) { w in
                if w == 1 { Thread.sleep(forTimeInterval: 0.002) }
                slots.counts[w] = round
            })
            // Both shares are done when run returns, also after the helper parked.
            #expect(slots.counts == [round, round])
            if round % 5 == 0 { Thread.sleep(forTimeInterval: 0.05) }
        }
    }

    @Test func busyOrTooSmallPoolRefuses() {
        let pool = WorkerPool(helpers: 1)
        #expect(!pool.run(workers: 3) { _ in })
        let nested = Atomic<Int>(0)
        #expect(pool.run(workers: 2) { w in
            if w == 0, !pool.run(workers: 2, { _ in }) { nested.add(1, ordering: .relaxed) }
        })
        #expect(nested.load(ordering: .relaxed) == 1)
        pool.retire()
        #expect(!pool.run(workers: 1) { _ in })
    }

    /// Several threads issuing parallel work at once (as concurrent tests do): the pool
    /// serves one, the others fall back to Dispatch, and every sum is right.
    @Test func concurrentCallersGetCorrectResults() {
        Parallel.setThreads(2)
        defer { Parallel.setThreads(1) }
        let n = 100_000
        let data = (0..<n).map { Float($0 % 7) }
        let expected = data.reduce(0, +)
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<50 {
                let partial = Slots(2)
                data.withUnsafeBufferPointer { p in
                    Parallel.forEach(n) { r in
                        var s: Float = 0
                        for i in r { s += p[i] }
                        partial.counts[r.lowerBound == 0 ? 0 : 1] = Int(s)
                    }
                }
                if Float(partial.counts[0] + partial.counts[1]) != expected { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}
