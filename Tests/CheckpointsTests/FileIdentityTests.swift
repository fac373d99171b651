import Foundation
import Testing
@testable import Checkpoints

/// The identity under which the isolating helper's verdict on a file is remembered.
@Suite struct FileIdentityTests {
    /// A file rewritten in place at the same size with its modification time set back
    /// is a new version (found by fuzzing: the fuzzer rewrites its input every 2 ms, and
    /// libhdf5 once read a mutant the helper had never seen).
    @Test func aRewriteWithinOneClockTickIsANewVersion() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("input.h5")
        try Data(repeating: 1, count: 4096).write(to: url)
        let first = try #require(FileIdentity(url))
        var stamps = stat()
        stat(url.path, &stamps)
        let handle = try FileHandle(forWritingTo: url)
        try handle.write(contentsOf: Data(repeating: 2, count: 4096))
        try handle.close()
        var times = [stamps.st_atim, stamps.st_mtim]
        #expect(utimensat(AT_FDCWD, url.path, &times, 0) == 0)
        let second = try #require(FileIdentity(url))
        #expect(first.digest != nil, "a file changed just now is identified by its contents too")
        #expect(first != second)
        #expect(second == FileIdentity(url), "an unchanged file keeps its identity")
    }
}
