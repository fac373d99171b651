import Foundation
import Synchronization

/// Reads untrusted checkpoint files in a helper process before this process touches them.
///
/// libhdf5 1.10 can crash or loop forever on damaged metadata (docs/reliability.md), and
/// no Swift code can catch a segfault or an endless loop inside C. With isolation on,
/// `Checkpoint.read` and `CheckpointSummary.read` first run a helper (this program again,
/// with `Helper.arguments`) that reads the whole file with the same limits:
///
/// - the helper succeeds: the file is read here as usual;
/// - it rejects the file with a typed error: that error's one-line message is thrown
///   here as `CheckpointError.isolatedRead`, without libhdf5 in this process ever
///   seeing the damaged file;
/// - it dies from a signal or runs past its time limit: `CheckpointError.isolatedRead`
///   says so, and this process goes on.
///
/// A file is checked once per process while its inode, size and modification time stay
/// the same. Isolation is off until a program turns it on (the `safetune` and
/// `safetune-fuzz` commands do); library users who open strangers' files should too.
public enum ReadIsolation {
    /// How to start the helper.
    public struct Helper: Sendable {
        /// The program to run (normally this one).
        public var executable: URL
        /// Arguments before the helper options and the file path; they must make the
        /// program call `ReadIsolation.bootstrap` as a helper (normally `[helperCommand]`).
        public var arguments: [String]
        /// Seconds a helper may take: `base + perGigabyte × file size in GB`.
        public var baseSeconds: Double
        public var secondsPerGigabyte: Double

        /// A helper with the default time limit (60 s plus 30 s per GB).
        public init(executable: URL, arguments: [String], baseSeconds: Double = 60, secondsPerGigabyte: Double = 30) {
            self.executable = executable
            self.arguments = arguments
            self.baseSeconds = baseSeconds
            self.secondsPerGigabyte = secondsPerGigabyte
        }

        /// This process's own executable.
        public static func currentExecutable() -> URL {
            Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        }
    }

    private struct State: ~Copyable {
        var helper: Helper?
        var checked: Set<FileIdentity> = []
    }

    private static let state = Mutex(State())

    /// Turns isolation on for the rest of the process.
    public static func enable(_ helper: Helper) {
        state.withLock { $0.helper = helper }
    }

    /// Turns isolation off (a helper must not start helpers of its own).
    public static func disable() {
        state.withLock { $0.helper = nil }
    }

    /// Exit status of a helper that rejected the file (its message is on standard output).
    public static let rejectedStatus: Int32 = 2

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
        var options = CheckpointReadOptions()
        var rest = arguments.dropFirst()
        while rest.count > 1, let flag = rest.first, flag.hasPrefix("--") {
            guard let value = Int(rest.dropFirst().first ?? "") else { break }
            switch flag {
            case "--max-tensor-elements": options.maxTensorElements = value
            case "--max-total-elements": options.maxTotalElements = value
            default: exit(64)
            }
            rest = rest.dropFirst(2)
        }
        guard rest.count == 1, let path = rest.first else { exit(64) }
        exit(helperMain(path: path, options: options))
    }

    /// The helper's work: reads `path` in full with `options`, isolation off. Prints the
    /// error's one-line description on standard output and returns `rejectedStatus` when
    /// the file is rejected; returns 0 when it reads.
    static func helperMain(path: String, options: CheckpointReadOptions) -> Int32 {
        disable()
        let url = URL(fileURLWithPath: path)
        do {
            _ = try CheckpointSummary.read(from: url)
            _ = try Checkpoint.read(from: url, options: options)
            return 0
        } catch {
            let line = error.description.split(whereSeparator: \.isNewline).joined(separator: " ")
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
            return rejectedStatus
        }
    }

    /// Runs the helper on `url` unless isolation is off or the file was checked already.
    static func check(_ url: URL, options: CheckpointReadOptions) throws(CheckpointError) {
        guard let helper = state.withLock({ $0.helper }) else { return }
        // A missing or unreadable file gets its usual error from the in-process reader.
        guard let identity = FileIdentity(url) else { return }
        if state.withLock({ $0.checked.contains(identity) }) { return }
        let limit = helper.baseSeconds + helper.secondsPerGigabyte * Double(identity.size) / 1e9
        try run(helper, on: url, options: options, timeLimit: limit)
        state.withLock { _ = $0.checked.insert(identity) }
    }

    private static func run(_ helper: Helper, on url: URL, options: CheckpointReadOptions, timeLimit: Double) throws(CheckpointError) {
        let process = Process()
        process.executableURL = helper.executable
        process.arguments = helper.arguments + [
            "--max-tensor-elements", "\(options.maxTensorElements)",
            "--max-total-elements", "\(options.maxTotalElements)", url.path,
        ]
        // A crashing helper should die at once, not spend seconds symbolicating.
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { _, new in new }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw .isolatedRead(file: url.path, message: "\(url.path): cannot start the helper process that reads checkpoints (\(error))")
        }
        let deadline = Date().addingTimeInterval(timeLimit)
        var timedOut = false
        // The pipe carries one short line, so polling cannot deadlock on a full pipe.
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                timedOut = true
                break
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        process.waitUntilExit()
        let message = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if timedOut {
            throw .isolatedRead(file: url.path, message: String(format: "%@: reading it did not finish within %.0f s in a helper process (libhdf5 loops on some damaged files); not loaded", url.path, timeLimit))
        }
        switch (process.terminationReason, process.terminationStatus) {
        case (.exit, 0):
            return
        case (.exit, rejectedStatus) where !message.isEmpty:
            throw .isolatedRead(file: url.path, message: message)
        case (.uncaughtSignal, let signal):
            throw .isolatedRead(file: url.path, message: "\(url.path): reading it crashed a helper process (signal \(signal), inside libhdf5 on damaged files); the file is damaged or hostile, not loaded")
        case (_, let status):
            throw .isolatedRead(file: url.path, message: "\(url.path): the helper process that reads checkpoints failed (exit status \(status)); not loaded")
        }
    }
}

/// Identifies one version of a file: a rewrite changes the inode or the modification time.
private struct FileIdentity: Hashable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let modified: Int
    let modifiedNanoseconds: Int

    init?(_ url: URL) {
        var s = stat()
        guard stat(url.path, &s) == 0, (s.st_mode & S_IFMT) == S_IFREG else { return nil }
        device = UInt64(s.st_dev)
        inode = UInt64(s.st_ino)
        size = Int64(s.st_size)
        #if canImport(Darwin)
        let time = s.st_mtimespec
        #else
        let time = s.st_mtim
        #endif
        modified = Int(time.tv_sec)
        modifiedNanoseconds = Int(time.tv_nsec)
    }
}
