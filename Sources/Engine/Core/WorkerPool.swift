import Foundation
import Synchronization

/// Helper threads that stay awake between `Parallel.run` jobs.
///
/// A training step of a small model issues a few hundred parallel ops of 50–500 µs each.
/// Handing each to Dispatch wakes a parked thread every time, which measured about 50 µs
/// per op: 15 % of a LoRA step of the shipped model. These helpers instead watch a job
/// counter, spinning for a short while after each job (so the next op finds them awake)
/// and parking on a condition only when no work comes. The calling thread is worker 0.
///
/// One job runs at a time; a caller that finds the pool busy (another thread's job, or a
/// `run` nested inside a job) gets `false` and runs the work another way.
final class WorkerPool: @unchecked Sendable {
    /// Helper threads (workers 1...helpers).
    let helpers: Int

    /// Bumped once per job; helpers compare it with the last one they ran.
    private let generation = Atomic<Int>(0)
    /// Helpers that have not finished the current job.
    private let remaining = Atomic<Int>(0)
    /// Whether a job is being submitted or running.
    private let busy = Atomic<Bool>(false)
    /// Helpers waiting on `wake` (the submitter broadcasts only when there are some).
    private let parked = Atomic<Int>(0)
    private let wake = NSCondition()
    /// Set once by `retire`: helpers exit at the next generation.
    private let retired = Atomic<Bool>(false)
    /// The current job and its worker count: written before `generation` is bumped, read by
    /// helpers after they see the bump, cleared once every helper is done.
    private var job: ((Int) -> Void)?
    private var jobWorkers = 0

    /// Spins (atomic loads) a helper makes before it starts yielding its core.
    static let spinsBeforeYield = 4_000
    /// `sched_yield` calls after those, before it parks: roughly 100–200 µs awake in all.
    static let yieldsBeforePark = 200

    /// Starts `helpers` threads.
    init(helpers: Int) {
        self.helpers = helpers
        for index in stride(from: 1, through: helpers, by: 1) {
            let thread = Thread { self.serve(index: index) }
            thread.name = "safetune-worker-\(index)"
            thread.start()
        }
    }

    /// Lets the helpers exit once the running job (if any) is done; `run` refuses from then on.
    func retire() {
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { sched_yield() }
        retired.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        wake.lock()
        wake.broadcast()
        wake.unlock()
    }

    /// Runs `body(w)` for every `w` in `0..<workers`, `w` = 0 on the calling thread, and
    /// waits for all. Returns false without running anything when the pool is busy or has
    /// too few helpers.
    func run(workers: Int, _ body: (Int) -> Void) -> Bool {
        guard workers >= 1, workers - 1 <= helpers,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { body in
            job = body
            jobWorkers = workers
            remaining.store(helpers, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if parked.load(ordering: .sequentiallyConsistent) > 0 {
                wake.lock()
                wake.broadcast()
                wake.unlock()
            }
            body(0)
            var spins = 0
            while remaining.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > Self.spinsBeforeYield { sched_yield() }
            }
            job = nil
        }
        return true
    }

    /// A helper's loop: wait for the next generation, run its share, report done.
    private func serve(index: Int) {
        var seen = 0
        while true {
            var spins = 0, yields = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                if spins < Self.spinsBeforeYield {
                    spins += 1
                } else if yields < Self.yieldsBeforePark {
                    yields += 1
                    sched_yield()
                } else {
                    wake.lock()
                    parked.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                    parked.subtract(1, ordering: .sequentiallyConsistent)
                    wake.unlock()
                    spins = 0
                    yields = 0
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if retired.load(ordering: .sequentiallyConsistent) { return }
            if index < jobWorkers, let job { job(index) }
            remaining.subtract(1, ordering: .releasing)
        }
    }
}
