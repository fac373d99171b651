import Foundation

/// A line printed if the process is told to terminate (SIGTERM): what `mpirun` sends the
/// surviving processes when one process of the run fails, after printing which.
enum TerminationNote {
    /// The line, kept as bytes ready for `write(2)`: nothing else is safe in a signal handler.
    nonisolated(unsafe) private static var bytes: UnsafeMutableBufferPointer<UInt8>?

    /// Prints `line` on standard error on SIGTERM, then exits with 143 (128 + SIGTERM).
    static func install(_ line: String) {
        let utf8 = Array("error: \(line)\n".utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: utf8.count)
        _ = buffer.initialize(from: utf8)
        bytes = buffer
        signal(SIGTERM) { _ in
            if let note = TerminationNote.bytes { _ = write(STDERR_FILENO, note.baseAddress, note.count) }
            _exit(143)
        }
    }
}
