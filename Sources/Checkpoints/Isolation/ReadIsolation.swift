import Foundation
import Synchronization

/// Reads untrusted checkpoint files in a helper process, so that libhdf5 in this process
/// only ever parses files SafeTune wrote.
///
/// libhdf5 1.10 can crash, loop forever, or read past its buffers on damaged metadata
/// (docs/reliability.md), and no Swift code can catch a segfault or an endless loop in C.
/// A helper that survives a file proves little about this process either: an over-read
/// that the helper's memory layout happens to tolerate can fault here. With isolation on,
/// `Checkpoint.read` and `CheckpointSummary.read` ask a helper process (this program
/// again, started with `helperCommand`) to read the whole file with the same limits:
///
/// - it reads the file: it writes what it read as a fresh checkpoint in the temporary
///   folder (a *clean copy*), which this process reads and deletes;
/// - it rejects the file with a typed error: that error's description is thrown here as
///   `CheckpointError.isolatedRead`, without libhdf5 in this process ever seeing the file;
/// - it dies from a signal or runs past its time limit: `CheckpointError.isolatedRead`
///   says so, and this process goes on.
///
/// The helper reads each file in a child it forks for that file, so a file is always
/// judged by a libhdf5 that no earlier file has touched. Isolation is off until a program
/// turns it on (the `safetune` and `safetune-fuzz` commands do); library users who open
/// strangers' files should too.
public enum ReadIsolation {
    /// How to start the helper.
    public struct Helper: Sendable {
        /// The program to run (normally this one).
        public var executable: URL
        /// Arguments that make the program call `ReadIsolation.bootstrap` as a helper
        /// (normally `[helperCommand]`).
        public var arguments: [String]
        /// Seconds of processor time a helper may take per file: `base + perGigabyte × file
        /// size in GB`; ten times that on the clock. Processor time, so that a loaded
        /// machine does not turn a slow read into a rejected file.
        public var baseSeconds: Double
        public var secondsPerGigabyte: Double
        /// Keep one helper for many files instead of one per file, restarted only when it
        /// fails. For programs that read thousands of small files (the fuzzer): a process
        /// start costs more than reading one. Either way each file is read in a fresh fork
        /// of the helper, so no libhdf5 state passes from one file to the next.
        public var persistent: Bool

        /// A helper with the default time limit (60 s plus 30 s per GB), one per file.
        public init(executable: URL, arguments: [String], baseSeconds: Double = 60, secondsPerGigabyte: Double = 30,
                    persistent: Bool = false) {
            self.executable = executable
            self.arguments = arguments
            self.baseSeconds = baseSeconds
            self.secondsPerGigabyte = secondsPerGigabyte
            self.persistent = persistent
        }

        /// This process's own executable.
        public static func currentExecutable() -> URL {
            Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        }
    }

    private static let state = Mutex<Helper?>(nil)
    /// Numbers the clean copies of this process.
    private static let copies = Atomic<Int>(0)
    /// The kept helper of a persistent `Helper`; the lock also keeps requests one at a time.
    private static let kept = Mutex<HelperProcess?>(nil)

    /// Turns isolation on for the rest of the process.
    public static func enable(_ helper: Helper) {
        state.withLock { $0 = helper }
        kept.withLock { $0?.stop(); $0 = nil }
    }

    /// Turns isolation off (a helper must not start helpers of its own).
    public static func disable() {
        state.withLock { $0 = nil }
        kept.withLock { $0?.stop(); $0 = nil }
    }

    /// The first argument that makes a program act as the helper (see `bootstrap`).
    public static let helperCommand = "__read-checkpoint"

    /// Call first thing in a program's entry point. Started as a helper (first argument
    /// `helperCommand`), it does the helper's work and exits; otherwise it turns isolation
    /// on with this executable as the helper.
    public static func bootstrap(arguments: [String] = Array(CommandLine.arguments.dropFirst())) {
        guard arguments.first == helperCommand else {
            enable(Helper(executable: Helper.currentExecutable(), arguments: [helperCommand]))
            return
        }
        exit(serve())
    }

    /// One file to read, as a line of JSON on the helper's standard input.
    struct Request: Codable {
        var path: String
        /// Where to write the clean copy.
        var copy: String
        var maxTensorElements: Int
        var maxTotalElements: Int
        var verifyChecksums: Bool
        /// Processor seconds the read may take; ten times that on the clock.
        var timeLimit: Double
    }

    /// The helper's answer, a line of JSON on its standard output.
    enum Reply: Codable, Equatable {
        /// Read, and its clean copy written.
        case read
        /// Read, but the clean copy could not be written (a full disk).
        case cannotCopy(String)
        /// The reader's typed error, by its description.
        case rejected(String)
        case crashed(signal: Int32)
        /// A timer ended the read: the processor-time one, or (`clock`) the one on the clock,
        /// which only a stopped or starved helper reaches.
        case timedOut(clock: Bool)
    }

    /// The helper's work: answers each request, until its standard input ends, by reading
    /// the file in full in a child forked for it. A fresh fork per file means libhdf5
    /// state damaged by one file never reaches the next, and a crash or hang costs the
    /// child, not the helper; a fork costs a fraction of a millisecond.
    static func serve() -> Int32 {
        disable()
        // Children crash on hostile files by design: no core dump for each.
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
        // Initialise libhdf5 once, so that children start from its ready state.
        HDF5File.initializeLibrary()
        while let line = readLine() {
            guard let request = try? JSONDecoder().decode(Request.self, from: Data(line.utf8)) else { return 64 }
            guard let data = try? JSONEncoder().encode(readInChild(request)) else { return 70 }
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
        return 0
    }

    /// Reads the requested file in a forked child with timers on its processor time and
    /// on the clock; the child answers through a pipe, and its death is the answer when
    /// it crashes or a timer ends it.
    private static func readInChild(_ request: Request) -> Reply {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return .crashed(signal: 0) }
        let child = fork()
        if child == 0 {
            close(ends[0])
            limit(ITIMER_PROF, seconds: request.timeLimit)
            limit(ITIMER_REAL, seconds: 10 * request.timeLimit)
            var options = CheckpointReadOptions()
            options.maxTensorElements = request.maxTensorElements
            options.maxTotalElements = request.maxTotalElements
            options.verifyChecksums = request.verifyChecksums
            let url = URL(fileURLWithPath: request.path)
            var reply = Reply.read
            do {
                let checkpoint = try Checkpoint.read(from: url, options: options)
                do { try checkpoint.write(to: URL(fileURLWithPath: request.copy), cleanCopy: true) } catch { reply = .cannotCopy(error.description) }
            } catch {
                reply = .rejected(error.description)
            }
            let data = (try? JSONEncoder().encode(reply)) ?? Data()
            let written = data.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
            _exit(written == data.count ? 0 : 70)
        }
        close(ends[1])
        defer { close(ends[0]) }
        guard child > 0 else { return .crashed(signal: 0) }
        var answer: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(ends[0], &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            answer += chunk[..<count]
        }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        if signal == SIGPROF || signal == SIGALRM { return .timedOut(clock: signal == SIGALRM) }
        if signal != 0 { return .crashed(signal: signal) }
        return (try? JSONDecoder().decode(Reply.self, from: Data(answer))) ?? .crashed(signal: 0)
    }

    /// Arms a one-shot interval timer whose signal ends the process.
    private static func limit(_ timer: __itimer_which, seconds: Double) {
        let whole = seconds.rounded(.down)
        var value = itimerval(it_interval: timeval(),
                              it_value: timeval(tv_sec: Int(whole), tv_usec: max(Int((seconds - whole) * 1e6), whole == 0 ? 1 : 0)))
        setitimer(__itimer_which_t(timer.rawValue), &value, nil)
    }

    /// `read` applied to `helper`'s clean copy of `url` (deleted after), or to `url` itself
    /// when there is no helper (isolation is off), with the options to read it with. The
    /// copy carries no checksums and is read without verifying them: the helper verified
    /// the file's. An error reading the copy names `url`.
    static func reading<T>(_ url: URL, options: CheckpointReadOptions, helper: Helper? = state.withLock({ $0 }),
                           _ read: (URL, CheckpointReadOptions) throws(CheckpointError) -> T) throws(CheckpointError) -> T {
        guard let helper, let copy = try cleanCopy(of: url, options: options, helper: helper) else { return try read(url, options) }
        defer { try? FileManager.default.removeItem(at: copy) }
        var trusted = options
        trusted.verifyChecksums = false
        do {
            return try read(copy, trusted)
        } catch {
            throw .isolatedRead(file: url.path, message: error.description.replacingOccurrences(of: copy.path, with: url.path))
        }
    }

    /// Why a read that a timer ended was refused. The clock's timer (ten times the
    /// processor-time limit) fires only when the helper could not run: stopped (SIGSTOP, a
    /// suspended job) or starved of processor time.
    static func timeoutMessage(path: String, limit: Double, clock: Bool) -> String {
        clock
            ? String(format: "%@: reading it did not finish within %.0f s on the clock in a helper process (ten times its %.1f s of processor time: the helper was stopped or starved of processor time); not loaded", path, 10 * limit, limit)
            : String(format: "%@: reading it did not finish within %.1f s of processor time in a helper process (libhdf5 loops on some damaged files); not loaded", path, limit)
    }

    /// Has `helper` read `url` and returns its clean copy, which the caller reads and
    /// deletes; nil when `url` is not a regular file (the in-process reader then gives its
    /// usual error).
    private static func cleanCopy(of url: URL, options: CheckpointReadOptions, helper: Helper) throws(CheckpointError) -> URL? {
        var status = stat()
        guard stat(url.path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        let limit = helper.baseSeconds + helper.secondsPerGigabyte * Double(status.st_size) / 1e9
        let copy = FileManager.default.temporaryDirectory
            .appendingPathComponent("safetune-clean-\(getpid())-\(copies.add(1, ordering: .relaxed).newValue).h5")
        let request = Request(path: url.path, copy: copy.path, maxTensorElements: options.maxTensorElements,
                              maxTotalElements: options.maxTotalElements, verifyChecksums: options.verifyChecksums, timeLimit: limit)
        let outcome: HelperProcess.Outcome
        if helper.persistent {
            outcome = kept.withLock { slot in
                if slot == nil { slot = HelperProcess(helper) }
                let outcome = slot!.read(request)
                if !slot!.isRunning { slot = nil }
                return outcome
            }
        } else {
            let process = HelperProcess(helper)
            outcome = process.read(request)
            process.stop()
        }
        let path = url.path
        var keep = false
        // Whatever a failed read or write left of the copy goes.
        defer { if !keep { try? FileManager.default.removeItem(at: copy) } }
        switch outcome {
        case .reply(.read):
            keep = true
            return copy
        case let .reply(.cannotCopy(message)):
            throw .isolatedRead(file: path, message: "\(path): read in a helper process, but its clean copy could not be written: \(message)")
        case let .reply(.rejected(message)):
            throw .isolatedRead(file: path, message: message)
        case let .reply(.timedOut(clock)):
            throw .isolatedRead(file: path, message: timeoutMessage(path: path, limit: limit, clock: clock))
        case let .reply(.crashed(signal)):
            throw .isolatedRead(file: path, message: "\(path): reading it crashed a helper process (signal \(signal), inside libhdf5 on damaged files); the file is damaged or hostile, not loaded")
        case let .cannotStart(reason):
            throw .isolatedRead(file: path, message: "\(path): cannot start the helper process that reads checkpoints (\(reason))")
        case let .failed(reason):
            throw .isolatedRead(file: path, message: "\(path): the helper process that reads checkpoints \(reason); not loaded")
        }
    }
}

/// One running helper and the pipes to it: a request goes in as a line, the reply is
/// awaited until a deadline, and a helper that dies or runs late is reaped.
///
/// Started with `posix_spawn`, not Foundation's `Process`: on Linux, `Process.run` copies
/// each `/proc/self/fd` entry's full 256-byte name field past the end of its directory
/// buffer (valgrind shows the read), which can fault when that buffer ends a mapping.
private final class HelperProcess {
    enum Outcome {
        case reply(ReadIsolation.Reply)
        case cannotStart(String)
        /// The helper itself ended or stopped answering (its children have their own timers).
        case failed(String)
    }

    private var pid: pid_t = 0
    /// This side's ends of the helper's standard input and output.
    private var requests: Int32 = -1, replies: Int32 = -1
    private var startError: String?
    private var status: Int32?
    private var pending: [UInt8] = []

    init(_ helper: ReadIsolation.Helper) {
        guard let closeFrom = Self.closeFrom else {
            startError = "this C library has no posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later)"
            return
        }
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1]
        guard Self.pipe(&input) else { startError = String(cString: strerror(errno)); return }
        guard Self.pipe(&output) else {
            startError = String(cString: strerror(errno))
            close(input[0]); close(input[1])
            return
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // The helper inherits no other descriptor. libhdf5 locks each file it opens
        // (flock) and does not open it close-on-exec: an inherited descriptor would keep
        // this process's lock for as long as the helper lives, and this process could not
        // open that file again meanwhile, even after closing it.
        _ = closeFrom(&actions, 3)
        // A crashing reader should die at once, not spend seconds symbolicating.
        let environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { _, new in new }
            .map { "\($0.key)=\($0.value)" }
        let arguments = [helper.executable.path] + helper.arguments
        let argv = arguments.map { strdup($0) } + [nil], envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        let result = posix_spawn(&pid, helper.executable.path, &actions, nil, argv, envp)
        close(input[0])
        close(output[1])
        requests = input[1]
        replies = output[0]
        if result != 0 { startError = "\(helper.executable.path): \(String(cString: strerror(result)))" }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does
    /// not declare (it is a GNU extension), looked up at run time.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeFrom: CloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: CloseFrom.self)
    }

    /// A pipe whose ends no other program this process starts inherits.
    private static func pipe(_ ends: inout [Int32]) -> Bool {
        guard Glibc.pipe(&ends) == 0 else { return false }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return true
    }

    deinit {
        if requests >= 0 { close(requests) }
        if replies >= 0 { close(replies) }
    }

    /// Whether the helper can take the next file.
    var isRunning: Bool {
        guard startError == nil, status == nil else { return false }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return true }
        status = raw
        return false
    }

    /// Asks the helper to read one file and waits for the answer. The helper's child
    /// enforces the request's limits; this bound, past the child's own clock limit, only
    /// catches a helper that stopped answering.
    func read(_ request: ReadIsolation.Request) -> Outcome {
        if let startError { return .cannotStart(startError) }
        guard let line = try? JSONEncoder().encode(request), send(line + Data("\n".utf8)) else { return ended() }
        let deadline = Date().addingTimeInterval(10 * request.timeLimit + 5)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let reply = try? JSONDecoder().decode(ReadIsolation.Reply.self, from: Data(pending[..<newline]))
                pending.removeSubrange(...newline)
                guard let reply else { terminate(); return .failed("sent an unreadable answer") }
                return .reply(reply)
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                terminate()
                return .failed("stopped answering")
            }
            var descriptor = pollfd(fd: replies, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(left * 1000 + 1, 1000)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = Foundation.read(replies, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return ended() }
            pending += chunk[..<count]
        }
    }

    /// Closes the helper's input, so it exits after its current file, and reaps it.
    func stop() {
        guard startError == nil else { return }
        close(requests)
        requests = -1
        reap()
    }

    private func terminate() {
        kill(pid, SIGKILL)
        reap()
    }

    /// Waits for the helper to end and keeps its wait status.
    private func reap() {
        guard status == nil else { return }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        status = raw
    }

    /// How a helper that stopped answering ended.
    private func ended() -> Outcome {
        reap()
        let raw = status ?? 0, signal = raw & 0x7f
        return .failed(signal != 0 ? "died from signal \(signal)" : "exited with status \((raw >> 8) & 0xff)")
    }

    /// Writes to the helper with SIGPIPE held back: a helper that died must not take this
    /// process with it. False when the helper is gone.
    private func send(_ data: Data) -> Bool {
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let fd = requests
        var written = 0
        return data.withUnsafeBytes { bytes -> Bool in
            while written < bytes.count {
                let n = write(fd, bytes.baseAddress! + written, bytes.count - written)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    // Take the SIGPIPE this write raised before unblocking it.
                    var none = timespec()
                    _ = sigtimedwait(&pipeSignal, nil, &none)
                    return false
                }
                written += n
            }
            return true
        }
    }
}
