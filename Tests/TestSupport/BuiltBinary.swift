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

    /// Runs the program with `arguments`, waiting for it to exit.
    public func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        guard let url else { throw CocoaError(.fileNoSuchFile) }
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
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
