import Foundation
import Testing
@testable import Checkpoints

/// A save killed mid-write leaves `.<name>.tmp-<pid>-<n>` behind; the next successful
/// write of the same target removes it, and nothing else.
@Suite struct StaleTempFileTests {
    /// The id of a process that has already exited.
    static func deadPID() throws -> Int32 {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        child.arguments = ["-c", "exit 0"]
        try child.run()
        child.waitUntilExit()
        return child.processIdentifier
    }

    @Test func nextWriteRemovesLeftoversOfDeadWriters() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("model.h5")
        let dead = try Self.deadPID()
        let own = ProcessInfo.processInfo.processIdentifier
        let stale = [".model.h5.tmp-\(dead)-12345", ".model.h5.tmp-\(dead)-1"]
        // Live writers (this process, pid 1), another target, and names not of the pattern survive.
        let kept = [".model.h5.tmp-\(own)-7", ".model.h5.tmp-1-7", ".other.h5.tmp-\(dead)-3",
                    ".model.h5.tmp-\(dead)-x", ".model.h5.tmp-\(dead)", "model.h5.tmp-\(dead)-9"]
        for name in stale + kept {
            try Data("partial".utf8).write(to: dir.appendingPathComponent(name))
        }
        try AtomicFile.write(to: target) { try Data("new".utf8).write(to: $0) }
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        #expect(left == Set(kept + ["model.h5"]))
        #expect(try Data(contentsOf: target) == Data("new".utf8))
    }

    @Test func failedWriteLeavesLeftoversAlone() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("model.h5")
        let stale = ".model.h5.tmp-\(try Self.deadPID())-5"
        try Data("partial".utf8).write(to: dir.appendingPathComponent(stale))
        struct Refused: Error {}
        #expect(throws: Refused.self) { try AtomicFile.write(to: target) { _ in throw Refused() } }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == [stale])
    }

    @Test func checkpointSaveRemovesLeftover() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("c.h5")
        let stale = dir.appendingPathComponent(".c.h5.tmp-\(try Self.deadPID())-99")
        try Data(repeating: 0, count: 1000).write(to: stale)
        try Checkpoint(config: TinyConfigs.gpt2, weights: randomWeights(TinyConfigs.gpt2)).write(to: target)
        #expect(!FileManager.default.fileExists(atPath: stale.path))
        #expect(try Checkpoint.read(from: target).weights.count == ParameterLayout(config: TinyConfigs.gpt2).parameters.count)
    }
}
