import Foundation

/// Ends the process with status 3 when one input has used more than `limit` seconds of
/// this process's processor time, or has taken ten times that on the clock: a parser that
/// never returns is a finding, and the input stays in the scratch folder.
///
/// Processor time, not the clock, because campaigns run at low priority beside other
/// work: an input that waits for a processor is not a hang. The clock bound still catches
/// an input that blocks without spinning.
final class Watchdog: @unchecked Sendable {
    let limit: Double
    private let lock = NSLock()
    private var iteration = -1
    private var since = Date()
    private var cpuSince = 0.0

    init(limit: Double) { self.limit = limit }

    /// Records that `iteration` starts now.
    func started(_ iteration: Int) {
        let cpu = Self.processorSeconds()
        lock.lock()
        self.iteration = iteration
        since = Date()
        cpuSince = cpu
        lock.unlock()
    }

    /// Checks once a second on a background thread.
    func start() {
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 1)
                let cpu = Self.processorSeconds()
                lock.lock()
                let (i, elapsed, used) = (iteration, Date().timeIntervalSince(since), cpu - cpuSince)
                lock.unlock()
                if i >= 0 && (used > limit || elapsed > 10 * limit) {
                    FileHandle.standardError.write(Data("hang: input \(i) has run for \(Int(elapsed)) s (\(Int(used)) s of processor time)\n".utf8))
                    // _exit, not exit: atexit handlers (libhdf5's) could wait on the stuck thread.
                    _exit(3)
                }
            }
        }
        thread.start()
    }

    /// Processor time this process has used, all threads.
    private static func processorSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
