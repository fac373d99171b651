import Checkpoints
import Foundation
import Testing
import TestSupport

/// `mpirun -np 2 safetune train`: the tiny model's quickstart (LoRA with dropout, SSAH's
/// mask, the SA-ESS loss with answer probes, the gate) on two processes against one.
@Suite(.serialized, .enabled(if: MPIRun.installed && BuiltBinary.safetune.url != nil, "needs mpirun (openmpi-bin)"))
struct DataParallelTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Two processes on this machine, one thread each.
    static let twoProcesses = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]

    /// The recipe and what every run here shares: 8 steps, a checkpoint every 2.
    static func arguments(_ output: URL, gate: Bool = false, resume: Bool = false) -> [String] {
        var settings = ["training.epochs=null", "training.steps=8", "schedule.warmup_steps=2", "training.threads=1",
                        "adapters.dropout=0.1", "safety.signal.answer_probes=true", "safety.signal.calibration=null",
                        "eval.suites=[]", "eval.max_batches=2", "output.report=false", "output.save_every=2",
                        "output.dir=\(output.path)"]
        settings += gate ? ["safety.gate.variants=2", "safety.gate.steps=4", "safety.gate.kind=lora"] : ["safety.gate.enabled=false"]
        return [root.appendingPathComponent("recipes/tiny/quickstart.yaml").path, "--json"] + settings.flatMap { ["--set", $0] }
            + (resume ? ["--resume"] : [])
    }

    static func train(_ output: URL, gate: Bool = false, resume: Bool = false, processes: Int) throws -> BuiltBinary.Result {
        try BuiltBinary.safetune.run(["train"] + arguments(output, gate: gate, resume: resume),
                                     launcher: processes > 1 ? twoProcesses : [])
    }

    /// Every float tensor of a checkpoint's adapters and signal head, by path.
    static func trained(_ output: URL) throws -> [String: [Float]] {
        let c = try Checkpoint.read(from: output.appendingPathComponent("adapters.h5"))
        var out: [String: [Float]] = [:]
        for (path, group) in c.adapters?.groups ?? [:] { for (name, t) in group.tensors { out["\(path).\(name)"] = t.scalars } }
        for (name, t) in c.signal?.tensors ?? [:] { out["signal.\(name)"] = t.scalars }
        return out
    }

    /// The largest element-wise difference between two runs' trained tensors.
    static func largestDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
        #expect(Set(a.keys) == Set(b.keys))
        return a.keys.map { k in zip(a[k]!, b[k] ?? []).map { abs($0 - $1) }.max() ?? 0 }.max() ?? .infinity
    }

    /// Rows of LoRA's B matrices that are exactly zero: SSAH pins the frozen units' rows there.
    static func pinnedRows(_ t: [String: [Float]], _ c: Checkpoint) -> Set<String> {
        var rows = Set<String>()
        for (path, group) in c.adapters?.groups ?? [:] {
            guard let b = group.tensors["B"], b.shape.count == 2 else { continue }
            let values = t["\(path).B"]!
            for r in 0..<b.shape[0] where values[(r * b.shape[1])..<((r + 1) * b.shape[1])].allSatisfy({ $0 == 0 }) { rows.insert("\(path)#\(r)") }
        }
        return rows
    }

    /// Float32 sums in another order: after 8 AdamW steps at learning rate 1e-3 the weights
    /// of 2 processes and of 1 differ by about 1e-6; a tenth of one full Adam step is the bound.
    static let orderBound: Float = 1e-4

    @Test func twoProcessesTrainTheOneProcessRunAndTheGateAgrees() throws {
        let dir = try TestFiles()
        let one = dir.root.appendingPathComponent("one"), two = dir.root.appendingPathComponent("two")
        let again = dir.root.appendingPathComponent("again")
        let a = try Self.train(one, gate: true, processes: 1)
        let b = try Self.train(two, gate: true, processes: 2)
        let c = try Self.train(again, processes: 2)
        for r in [a, b, c] { #expect(r.status == 0, "\(r.err)") }
        let (x, y, z) = (try Self.trained(one), try Self.trained(two), try Self.trained(again))
        // Same reduction order, same bits; another order, within float32 summation error.
        #expect(Self.largestDifference(y, z) == 0)
        let difference = Self.largestDifference(x, y)
        #expect(difference > 0 && difference <= Self.orderBound, "1 vs 2 processes: \(difference)")

        // SSAH's mask holds the same rows at zero under both.
        let pinned = Self.pinnedRows(x, try Checkpoint.read(from: one.appendingPathComponent("adapters.h5")))
        #expect(!pinned.isEmpty)
        #expect(pinned == Self.pinnedRows(y, try Checkpoint.read(from: two.appendingPathComponent("adapters.h5"))))

        // Rank 0 alone prints and writes: one JSON summary, one metrics line per step and evaluation.
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(b.out.utf8)) as? [String: Any])
        let gateOne = try #require((try JSONSerialization.jsonObject(with: Data(a.out.utf8)) as? [String: Any])?["gate"] as? [String: Any])
        let gateTwo = try #require(summary["gate"] as? [String: Any])
        #expect(gateOne["verdict"] as? String == "pass" && gateTwo["verdict"] as? String == "pass")
        let statistics = (gateOne["statistic"] as? Double ?? .nan, gateTwo["statistic"] as? Double ?? .nan)
        #expect(abs(statistics.0 - statistics.1) < 1e-3 * abs(statistics.0), "gate statistic \(statistics)")
        let lines = try String(contentsOf: two.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 8 + 1)
        #expect(lines.first?.contains("allreduce_bytes") == true)
    }

    /// The process of `mpirun`'s rank `rank` whose command line names `output`.
    static func rank(_ rank: Int, of output: URL) -> Int32? {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for pid in procs.compactMap({ Int32($0) }) {
            guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                  let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            let words = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let variables = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if words.first?.hasSuffix("safetune") == true, words.contains("output.dir=\(output.path)"),
               variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }

    @Test func killingOneRankStopsTheRunWhichResumesOnTwoOrOne() throws {
        let dir = try TestFiles()
        let straight = dir.root.appendingPathComponent("straight"), killed = dir.root.appendingPathComponent("killed")
        #expect(try Self.train(straight, processes: 2).status == 0)

        let process = try BuiltBinary.safetune.prepared(["train"] + Self.arguments(killed), launcher: Self.twoProcesses)
        try process.run()
        let saved = killed.appendingPathComponent("checkpoints/step-00000004.h5")
        let deadline = Date().addingTimeInterval(300)
        while !FileManager.default.fileExists(atPath: saved.path), process.isRunning, Date() < deadline { usleep(20_000) }
        let victim = try #require(Self.rank(1, of: killed), "rank 1 not found")
        kill(victim, SIGKILL)
        let result = try BuiltBinary.wait(for: process)
        #expect(result.status != 0)
        #expect(result.err.contains("rank 1") && result.err.contains("--resume"), "\(result.err)")
        // No final checkpoint, and every periodic one left behind is whole.
        #expect(!FileManager.default.fileExists(atPath: killed.appendingPathComponent("model.h5").path))
        let left = try FileManager.default.contentsOfDirectory(atPath: killed.appendingPathComponent("checkpoints").path)
            .filter { $0.hasPrefix("step-") && $0.hasSuffix(".h5") }
        #expect(!left.isEmpty && left.count < 4)
        for name in left { _ = try Checkpoint.read(from: killed.appendingPathComponent("checkpoints/\(name)")) }

        // Resumed on 2 processes: the uninterrupted run, bit for bit; on 1, within summation order.
        let copy = dir.root.appendingPathComponent("killed-one")
        try FileManager.default.copyItem(at: killed, to: copy)
        #expect(try Self.train(killed, resume: true, processes: 2).status == 0)
        #expect(try Self.train(copy, resume: true, processes: 1).status == 0)
        let reference = try Self.trained(straight)
        #expect(Self.largestDifference(reference, try Self.trained(killed)) == 0)
        #expect(Self.largestDifference(reference, try Self.trained(copy)) <= Self.orderBound)
    }
}

enum MPIRun {
    /// Whether `mpirun` is on the PATH.
    static let installed = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        .contains { FileManager.default.isExecutableFile(atPath: "\($0)/mpirun") }
}
