import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replaces a file all at once: the content is written to a temporary file in the same
/// folder, forced to disk, and renamed over the target, so a crash at any moment leaves
/// either the old file or the new one, never a mixture.
public enum AtomicFile {
    /// Calls `body` with a temporary path next to `url`, then syncs and renames it to
    /// `url`. The temporary file is removed when `body` throws.
    public static func write(to url: URL, _ body: (URL) throws -> Void) throws {
        let folder = url.deletingLastPathComponent()
        let temp = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try body(temp)
            try sync(temp.path)
            guard rename(temp.path, url.path) == 0 else {
                throw AtomicFileError(file: url.path, operation: "rename", code: errno)
            }
        } catch {
            unlink(temp.path)
            throw error
        }
        // Make the rename itself durable.
        try? sync(folder.path)
    }

    /// fsync of a path (file or folder).
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw AtomicFileError(file: path, operation: "open for sync", code: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw AtomicFileError(file: path, operation: "fsync", code: errno) }
    }
}

/// A system call of an atomic write failed.
public struct AtomicFileError: Error, CustomStringConvertible {
    public let file: String
    public let operation: String
    public let code: Int32
    public var description: String { "\(file): \(operation) failed: \(String(cString: strerror(code)))" }
}
