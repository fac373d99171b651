import Foundation
import TestSupport
import Testing
@testable import Checkpoints

/// With isolation on, this process reads the helper's clean copy of a file, never the file:
/// a helper that survives a damaged file proves nothing about this process's memory layout.
/// These tests start helpers from the test process while other suites read and write
/// HDF5 files beside them, which is how the descriptor leak below showed.
@Suite(.serialized, .enabled(if: BuiltBinary.fuzzer.url != nil, "safetune-fuzz not found next to the test bundle; build it with `swift build`"))
struct ReadIsolationTests {
    static let helper = ReadIsolation.Helper(executable: BuiltBinary.fuzzer.url ?? URL(fileURLWithPath: "/"),
                                             arguments: [ReadIsolation.helperCommand], baseSeconds: 10)

    static func fixture(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
    }

    /// A checkpoint SafeTune wrote, from the fuzzing seed corpus.
    static let tinyCheckpoint = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/checkpoint/tiny-gpt2.h5")

    static func cleanCopies() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
            .filter { $0.hasPrefix("safetune-clean-\(getpid())-") }
    }

    @Test func theCallerReadsAFreshCopyWithTheSameContents() throws {
        let original = Self.tinyCheckpoint
        let direct = try ReadIsolation.reading(original, options: .init(), helper: nil) { url, options throws(CheckpointError) in
            #expect(url == original && options.verifyChecksums)
            return try Checkpoint.read(from: url, options: options)
        }
        var source: URL?
        let isolated = try ReadIsolation.reading(original, options: .init(), helper: Self.helper) { url, options throws(CheckpointError) in
            source = url
            // The copy carries no checksums: the helper verified the file's.
            #expect(FileManager.default.fileExists(atPath: url.path) && !options.verifyChecksums)
            return try Checkpoint.read(from: url, options: options)
        }
        let copy = try #require(source)
        #expect(copy != original && copy.lastPathComponent.hasPrefix("safetune-clean-"))
        #expect(!FileManager.default.fileExists(atPath: copy.path), "the copy outlived the read")
        #expect(isolated.weightsSHA256 == direct.weightsSHA256 && isolated.config == direct.config)
        #expect(isolated.adapters?.groups.keys.sorted() == direct.adapters?.groups.keys.sorted())
        #expect(isolated.provenance == direct.provenance && isolated.created == direct.created)
    }

    /// Found by the checkpoint campaign (seed 8801, input 4,801): reading an attribute of
    /// this file copies past libhdf5's global-heap buffer. A fresh release-built process
    /// faulted on it every time, while the helper's child, laid out differently, read it
    /// cleanly; the caller then parsed the file itself and died. Through the helper it
    /// reads, and only the copy reaches this process.
    @Test func aFileOnlyTheHelperReadsReachesTheCallerAsACopy() throws {
        let hostile = Self.fixture("hostile/libhdf5-overread.h5")
        var source: URL?
        let summary = try ReadIsolation.reading(hostile, options: .init(), helper: Self.helper) { url, _ throws(CheckpointError) in
            source = url
            return try CheckpointSummary.read(from: url)
        }
        #expect(source != hostile && summary.config.numLayers == 1)
        #expect(try Self.cleanCopies().isEmpty)
    }

    /// A rejection crosses unchanged and leaves no copy behind.
    @Test func aRejectedFileLeavesNoCopy() throws {
        let truncated = FileManager.default.temporaryDirectory.appendingPathComponent("truncated-\(UUID().uuidString).h5")
        defer { try? FileManager.default.removeItem(at: truncated) }
        try Data(try Data(contentsOf: Self.fixture("hostile/libhdf5-overread.h5")).prefix(9_000)).write(to: truncated)
        #expect(throws: CheckpointError.self) {
            try ReadIsolation.reading(truncated, options: .init(), helper: Self.helper) { url, options throws(CheckpointError) in
                try Checkpoint.read(from: url, options: options)
            }
        }
        #expect(try Self.cleanCopies().isEmpty)
    }

    /// libhdf5 locks each file it opens (flock) on a descriptor that is not close-on-exec.
    /// A helper started while this process held a file open inherited that descriptor,
    /// and with it the lock, for as long as it lived: this process could then not open the
    /// file again, even after closing it. Here the kept helper of a persistent `Helper`
    /// starts while a file is open and outlives the file's close.
    @Test func aHelperHoldsNoLockOnThisProcesssFiles() throws {
        let held = FileManager.default.temporaryDirectory.appendingPathComponent("held-\(UUID().uuidString).h5")
        defer { try? FileManager.default.removeItem(at: held) }
        let file = try HDF5File.create(at: held)
        try file.createGroup("/open-while-the-helper-starts")
        var kept = Self.helper
        kept.persistent = true
        defer { ReadIsolation.disable() }
        let summary = try ReadIsolation.reading(Self.tinyCheckpoint, options: .init(), helper: kept) { url, _ throws(CheckpointError) in
            try CheckpointSummary.read(from: url)
        }
        #expect(summary.config.numLayers > 0)
        try file.close()
        let reopened = try HDF5File.open(held)
        #expect(reopened.kind(of: "/open-while-the-helper-starts") == .group)
        try reopened.close()
    }
}

/// A read ended by the clock's timer says so: the helper was stopped or starved, which a
/// loop inside libhdf5 (the processor-time timer) does not explain.
@Suite struct ReadIsolationTimeoutTests {
    @Test func eachTimerNamesItsClock() {
        let cpu = ReadIsolation.timeoutMessage(path: "a.h5", limit: 7.5, clock: false)
        let wall = ReadIsolation.timeoutMessage(path: "a.h5", limit: 7.5, clock: true)
        #expect(cpu.hasPrefix("a.h5: ") && cpu.contains("7.5 s of processor time") && cpu.contains("libhdf5 loops"))
        #expect(wall.hasPrefix("a.h5: ") && wall.contains("75 s on the clock") && wall.contains("stopped or starved"))
        #expect(!wall.contains("libhdf5 loops"))
    }
}
