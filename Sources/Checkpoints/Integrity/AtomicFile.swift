import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replaces a file all at once: the content is written to a temporary file in the same
/// folder, forced to disk, and renamed over the target, so a crash at any moment leaves
/// either the old file or the new one, never a mixture.
///
/// A writer killed mid-save (SIGKILL, power loss) cannot remove its temporary file; the
/// next successful write of the same target removes such leftovers (see `removeStale`).
public enum AtomicFile {
    /// Prefix of the temporary files for `url`: `.<name>.tmp-`, followed by `<pid>-<random>`.
    static func tempPrefix(for url: URL) -> String { ".\(url.lastPathComponent).tmp-" }

    /// Calls `body` with a temporary path next to `url`, then syncs and renames it to
    /// `url`. The temporary file is removed when `body` throws.
    public static func write(to url: URL, _ body: (URL) throws -> Void) throws {
        let folder = url.deletingLastPathComponent()
        let temp = folder.appendingPathComponent("\(tempPrefix(for: url))\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
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
        removeStale(for: url)
    }

    /// Removes temporary files of `url` left by writers that no longer run: names of the
    /// form `.<name>.tmp-<pid>-<digits>` whose process id is not alive. Files of this
    /// process and of live processes are kept (they may be saves in progress); other
    /// names are never touched. Failures are ignored: this is tidying, not correctness.
    static func removeStale(for url: URL) {
        let folder = url.deletingLastPathComponent()
        let prefix = tempPrefix(for: url)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        let own = getpid()
        for name in names where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, UInt32(parts[1]) != nil, pid != own else { continue }
            // kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: alive, not ours).
            guard kill(pid, 0) != 0, errno == ESRCH else { continue }
            unlink(folder.appendingPathComponent(name).path)
        }
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
