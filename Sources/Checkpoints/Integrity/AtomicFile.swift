import CHDF5
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
            do {
                try body(temp)
                try sync(temp.path)
            } catch {
                // A full disk or a file-size limit reaches the caller as a failed HDF5 or
                // Foundation call that does not say why; name the cause when it is space.
                if let space = spaceProblem(temp: temp, folder: folder) {
                    throw AtomicFileError(file: url.path, operation: "write", code: space)
                }
                throw error
            }
            pauseBeforeRenameIfAsked(temp: temp, target: url)
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

    /// Makes sure `bytes` more bytes fit in `temp` (a temporary file of a `write(to:)` to
    /// `target`, already created): the process's file-size limit is checked and disk blocks
    /// are reserved past the end (`fallocate` keeping the size). A disk that is too full
    /// then fails here, before a library such as libhdf5 meets a failed write it does not
    /// recover from. File systems without `fallocate` are not reserved on.
    public static func reserve(_ bytes: Int, in temp: URL, for target: URL) throws {
        guard bytes > 0 else { return }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max, UInt64(bytes) > UInt64(limit.rlim_cur) {
            throw AtomicFileError(file: target.path, operation: "write", code: EFBIG)
        }
        let fd = open(temp.path, O_WRONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let failure = st_reserve_blocks(fd, Int64(bytes))
        if failure == ENOSPC || failure == EDQUOT {
            throw AtomicFileError(file: target.path, operation: "write", code: failure)
        }
    }

    /// `EFBIG` when the temporary file reached the process's file-size limit (`ulimit -f`),
    /// `ENOSPC` when the folder's file system has (almost) no space left, else nil.
    static func spaceProblem(temp: URL, folder: URL) -> Int32? {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            var info = stat()
            if stat(temp.path, &info) == 0, UInt64(info.st_size) + 65_536 >= UInt64(limit.rlim_cur) { return EFBIG }
        }
        var fs = statvfs()
        // Less than 1 MiB free: HDF5 writes in larger pieces than that.
        if statvfs(folder.path, &fs) == 0, UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < 1 << 20 { return ENOSPC }
        return nil
    }

    /// Test-only: `SAFETUNE_TEST_PAUSE_IN_SAVE=<file name>[:<seconds>]` stops the save of a
    /// file with that name for that long (default 60 s) after its temporary file is written
    /// and synced and before the rename, and says so on standard error (`test hook: paused
    /// …`). The crash tests kill the process there, the one moment a save can be caught
    /// with a complete temporary file beside the previous checkpoint. Read once; unset, it
    /// costs a comparison per save.
    static let pauseInSave: (name: String, seconds: Double)? = {
        guard let value = ProcessInfo.processInfo.environment["SAFETUNE_TEST_PAUSE_IN_SAVE"], !value.isEmpty else { return nil }
        let parts = value.split(separator: ":", maxSplits: 1)
        return (String(parts[0]), parts.count > 1 ? Double(parts[1]) ?? 60 : 60)
    }()

    static func pauseBeforeRenameIfAsked(temp: URL, target: URL) {
        guard let pause = pauseInSave, pause.name == target.lastPathComponent else { return }
        FileHandle.standardError.write(Data("test hook: paused \(pause.seconds) s before renaming \(temp.path) to \(target.lastPathComponent)\n".utf8))
        Thread.sleep(forTimeInterval: pause.seconds)
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
    public var description: String { "\(file): \(reason)" }
    /// The description without the file name.
    public var reason: String {
        let cause = String(cString: strerror(code))
        switch code {
        case EFBIG: return "\(operation) failed: \(cause) (the file-size limit, ulimit -f, was reached); the previous version of the file is unchanged"
        case ENOSPC, EDQUOT: return "\(operation) failed: \(cause); the previous version of the file is unchanged"
        default: return "\(operation) failed: \(cause)"
        }
    }
}
