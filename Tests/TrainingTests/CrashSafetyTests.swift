@testable import Checkpoints
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `safetune train` killed with SIGKILL at points chosen from its own progress (a small
/// version of `scripts/crash-test`), and a save that meets a file-size limit. Each kill is
/// checked to have landed where it was meant to; the resumed run must end bit for bit
/// where an uninterrupted one does.
@Suite(.serialized, .enabled(if: BuiltBinary.safetune.url != nil, "safetune binary not found next to the test bundle; build it with `swift build`"))
struct CrashSafetyTests {
    /// Eight steps, a checkpoint every two; batches large enough that a step outlasts the
    /// few milliseconds between a progress line and the kill.
    static let settings = ["--set", "eval.suites=[]", "--set", "output.save_every=2", "--set", "output.keep_last=2", "--set", "training.batch_size=16"]

    @Test(arguments: ["full", "lora"]) func killsLandWhereMeantAndTheResumeIsExact(kind: String) throws {
        let (files, recipe) = try TrainerTests.makeRun(kind: kind, steps: 8)
        func train(_ dir: String, _ extra: [String] = []) -> [String] {
            ["train", recipe.path] + Self.settings + ["--set", "output.dir=\(files.path(dir))"] + extra
        }
        let straight = try BuiltBinary.safetune.run(train("straight"))
        try #require(straight.status == 0, "\(straight.err)")
        let killed = files.root.appendingPathComponent("killed")

        // After the first saved checkpoint: the kill lands in step 3.
        var run = try WatchedRun(train("killed", ["--resume"]))
        try #require(run.kill { run.stderr.contains("saved step 2:") }, "the run ended before its first save: \(run.stderr)")
        #expect(Self.newestCheckpoint(killed) == 2 && Self.lastStep(killed) == 2,
                "the kill after save 2 did not land in step 3: log at step \(Self.lastStep(killed)), newest checkpoint \(Self.newestCheckpoint(killed))")

        // In the middle of a step with none saved since: step 4, after step 3 is logged.
        run = try WatchedRun(train("killed", ["--resume"]))
        try #require(run.kill { Self.lastStep(killed) >= 3 }, "the run ended before step 3: \(run.stderr)")
        #expect(Self.newestCheckpoint(killed) == 2 && Self.lastStep(killed) == 3,
                "the mid-step kill did not land in step 4: log at step \(Self.lastStep(killed)), newest checkpoint \(Self.newestCheckpoint(killed))")

        // Inside the save of step 4, its temporary file complete and not yet renamed.
        run = try WatchedRun(train("killed", ["--resume"]), environment: ["SAFETUNE_TEST_PAUSE_IN_SAVE": "step-00000004.h5:600"])
        var temp: String?
        try #require(run.kill {
            guard let line = run.stderr.split(separator: "\n").first(where: { $0.hasPrefix("test hook: paused") }),
                  let range = line.range(of: " before renaming ") else { return false }
            temp = String(line[range.upperBound...].dropLast(" to step-00000004.h5".count))
            return true
        }, "the run never paused in the save of step 4: \(run.stderr)")
        let paused = try #require(temp)
        #expect(FileManager.default.fileExists(atPath: paused), "no temporary file \(paused) after the kill inside its save")
        #expect(!FileManager.default.fileExists(atPath: killed.appendingPathComponent("checkpoints/step-00000004.h5").path))
        #expect(Self.newestCheckpoint(killed) == 2)
        for name in try Self.checkpoints(killed) {
            _ = try Checkpoint.read(from: killed.appendingPathComponent("checkpoints/\(name)"))  // checksums included
        }

        let resumed = try BuiltBinary.safetune.run(train("killed", ["--resume"]))
        try #require(resumed.status == 0, "\(resumed.err)")
        #expect(!FileManager.default.fileExists(atPath: paused), "the killed save's temporary file was not removed by the next save")
        try Self.expectSameWeights(files.root.appendingPathComponent("straight/model.h5"), killed.appendingPathComponent("model.h5"))
    }

    /// A save that reaches the file-size limit (`ulimit -f`): before libhdf5 writes (the
    /// limit is below the checkpoint's tensor bytes) or inside it (between those and the
    /// file's full size). Either way one error line naming the checkpoint and the cause,
    /// exit status 2, the previous version of the file intact, and the run resumable to the
    /// same end. The limited run starts over in the same folder, since resuming reads a
    /// checkpoint, whose clean copy (`ReadIsolation`) the limit refuses first: that too is
    /// one line.
    @Test(arguments: [false, true]) func aSaveOverTheFileSizeLimitFailsInOneLine(insideHDF5: Bool) throws {
        let (files, recipe) = try TrainerTests.makeRun(kind: "full", steps: 6)
        func train(_ dir: String, _ extra: [String] = []) -> [String] {
            ["train", recipe.path] + Self.settings + ["--set", "output.dir=\(files.path(dir))"] + extra
        }
        try #require(try BuiltBinary.safetune.run(train("straight")).status == 0)
        try #require(try BuiltBinary.safetune.run(train("run", ["--stop-after", "2"])).status == 0)
        let run = files.root.appendingPathComponent("run")
        let previous = run.appendingPathComponent("checkpoints/step-00000002.h5")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: previous.path)[.size] as? Int)
        let payload = try Checkpoint.read(from: previous).payloadBytes
        let limit = insideHDF5 ? (payload + size) / 2 / 1024 : payload / 2 / 1024
        if insideHDF5 { try #require(payload < limit * 1024 && limit * 1024 < size, "payload \(payload), file \(size)") }

        let before = try Data(contentsOf: previous)
        let limited = try Self.runLimited(fileSizeKB: limit, train("run"))
        #expect(limited.status == 2 && !limited.crashed, "status \(limited.status): \(limited.err)")
        let errors = limited.err.split(separator: "\n").filter { $0.contains("error") || $0.contains("Backtrac") || $0.contains("crash") }
        #expect(errors == ["error: \(previous.path): write failed: File too large (the file-size limit, ulimit -f, was reached); the previous version of the file is unchanged"],
                "\(limited.err)")
        #expect(try Self.checkpoints(run) == ["step-00000002.h5"] && Data(contentsOf: previous) == before)
        let reading = try Self.runLimited(fileSizeKB: limit, train("run", ["--resume"]))
        let readErrors = reading.err.split(separator: "\n").filter { $0.contains("error") || $0.contains("Backtrac") || $0.contains("crash") }
        #expect(reading.status == 2 && !reading.crashed && readErrors.count == 1
                && readErrors[0].hasPrefix("error: \(previous.path): read in a helper process, but its clean copy could not be written:")
                && readErrors[0].contains("ulimit -f"), "\(reading.err)")
        #expect(try !FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path).contains { $0.contains(".tmp-") })
        _ = try Checkpoint.read(from: previous)

        let resumed = try BuiltBinary.safetune.run(train("run", ["--resume"]))
        try #require(resumed.status == 0, "\(resumed.err)")
        try Self.expectSameWeights(files.root.appendingPathComponent("straight/model.h5"), run.appendingPathComponent("model.h5"))
    }

    // MARK: - Helpers

    /// `safetune ARGUMENTS` under a file-size limit of `fileSizeKB` KiB.
    static func runLimited(fileSizeKB: Int, _ arguments: [String]) throws -> (status: Int32, crashed: Bool, err: String) {
        let r = try BuiltBinary.safetune.run(arguments, launcher: ["sh", "-c", "ulimit -f \(fileSizeKB) && exec \"$0\" \"$@\""])
        return (r.status, r.crashed, r.err)
    }

    /// The periodic checkpoints of a run folder, oldest first.
    static func checkpoints(_ run: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)
            .filter { $0.hasPrefix("step-") && $0.hasSuffix(".h5") }.sorted()
    }

    static func newestCheckpoint(_ run: URL) -> Int {
        ((try? checkpoints(run)) ?? []).last.flatMap { Int($0.dropFirst(5).prefix(8)) } ?? 0
    }

    /// The last training step metrics.jsonl records.
    static func lastStep(_ run: URL) -> Int {
        guard let text = try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").compactMap { line -> Int? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["kind"] == nil else { return nil }
            return object["step"] as? Int
        }.last ?? 0
    }

    static func expectSameWeights(_ a: URL, _ b: URL) throws {
        let x = try Checkpoint.read(from: a), y = try Checkpoint.read(from: b)
        #expect(x.weights.keys.sorted() == y.weights.keys.sorted())
        for (name, t) in x.weights { #expect(t.scalars == y.weights[name]?.scalars, "\(name)") }
        for (path, group) in x.adapters?.groups ?? [:] {
            for (name, t) in group.tensors { #expect(t.scalars == y.adapters?.groups[path]?.tensors[name]?.scalars, "\(path)/\(name)") }
        }
        #expect((x.adapters == nil) == (y.adapters == nil))
    }
}

/// A `safetune` process whose standard error is collected while it runs, to be killed at a
/// point its own output (or files) show.
final class WatchedRun: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var collected = Data()

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let program: URL = try #require(BuiltBinary.safetune.url)
        process.executableURL = program
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.withLock { self.collected.append(data) }
        }
        try process.run()
    }

    var stderr: String { lock.withLock { String(decoding: collected, as: UTF8.self) } }

    /// Polls `condition` every millisecond and sends SIGKILL as soon as it holds. False when
    /// the process ended first, or after two minutes.
    func kill(when condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(120)
        var fired = false
        while process.isRunning && Date() < deadline {
            if condition() { fired = true; break }
            usleep(1000)
        }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        (process.standardError as? Pipe)?.fileHandleForReading.readabilityHandler = nil
        return fired && process.terminationReason == .uncaughtSignal
    }
}
