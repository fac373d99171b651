import Foundation

/// Ends the process with status 3 when one input runs longer than `limit` seconds: a
/// parser that never returns is a finding, and the input stays in the scratch folder.
final class Watchdog: @unchecked Sendable {
    let limit: Double
    private let lock = NSLock()
    private var iteration = -1
    private var since = Date()

    init(limit: Double) { self.limit = limit }

    /// Records that `iteration` starts now.
    func started(_ iteration: Int) {
        lock.lock()
        self.iteration = iteration
        since = Date()
        lock.unlock()
    }

    /// Checks once a second on a background thread.
    func start() {
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 1)
                lock.lock()
                let (i, elapsed) = (iteration, Date().timeIntervalSince(since))
                lock.unlock()
                if i >= 0 && elapsed > limit {
                    FileHandle.standardError.write(Data("hang: input \(i) has run for \(Int(elapsed)) s\n".utf8))
                    // _exit, not exit: atexit handlers (libhdf5's) could wait on the stuck thread.
                    _exit(3)
                }
            }
        }
        thread.start()
    }
}
