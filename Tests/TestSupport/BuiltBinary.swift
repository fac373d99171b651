import Foundation

/// A command-line program of this package, run by the tests from the build folder
/// (`swift test` builds `safetune` and `safetune-fuzz` next to the test bundle).
public struct BuiltBinary: Sendable {
    /// The `safetune` command.
    public static let safetune = BuiltBinary(name: "safetune")
    /// The `safetune-fuzz` command.
    public static let fuzzer = BuiltBinary(name: "safetune-fuzz")

    /// The executable, or nil when it has not been built (tests then report a skip).
    public let url: URL?

    init(name: String) {
        let candidate = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
        url = FileManager.default.isExecutableFile(atPath: candidate.path) ? candidate : nil
    }

    /// Exit status, standard output and standard error of one run.
    public struct Result: Sendable {
        public let status: Int32
        /// Set when the program was killed by a signal (then `status` is the signal number).
        public let crashed: Bool
        public let out: String
        public let err: String
    }

    /// Runs the program with `arguments`, waiting for it to exit; with a `launcher`
    /// (`["mpirun", "-np", "2"]`), runs the launcher with the program and its arguments.
    public func run(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = []) throws -> Result {
        let process = try prepared(arguments, environment: environment, launcher: launcher)
        return try Self.wait(for: process)
    }

    /// The process `run` starts, not started yet (for tests that act while it runs).
    public func prepared(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = []) throws -> Process {
        guard let url else { throw CocoaError(.fileNoSuchFile) }
        let process = Process()
        if launcher.isEmpty {
            process.executableURL = url
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = launcher + [url.path] + arguments
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        return process
    }

    /// Starts `process` (from `prepared`) unless it runs already, and waits for it to exit.
    public static func wait(for process: Process) throws -> Result {
        let out = process.standardOutput as! Pipe, err = process.standardError as! Pipe
        if !process.isRunning && process.processIdentifier == 0 { try process.run() }
        // Read standard error on the side while standard output is read here, so that
        // neither pipe can fill up and block the child.
        let errData = Collected()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errData.data = err.fileHandleForReading.readDataToEndOfFile() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, crashed: process.terminationReason == .uncaughtSignal,
                      out: String(decoding: outData, as: UTF8.self), err: String(decoding: errData.data, as: UTF8.self))
    }

    /// `run` with variadic arguments.
    public func run(_ arguments: String...) throws -> Result { try run(arguments) }
}

/// Bytes handed from a reader thread to the waiting one (the group's wait orders the accesses).
private final class Collected: @unchecked Sendable {
    var data = Data()
}
