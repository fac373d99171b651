import Checkpoints
import Foundation
@testable import Safety
import Testing
import TestSupport

/// `safetune verify --json` through the real binary: every error path fails closed, with
/// exit status 2 and a reject object (verdict, error naming the cause) on standard output.
/// And `safetune scan`, the behavioural probe: a calibrated run and its error lines.
@Suite(.enabled(if: BuiltBinary.safetune.url != nil, "safetune binary not found next to the test bundle; build it with `swift build`"))
struct GateCLITests {
    let dir: URL
    let parent: URL
    let child: URL
    let clean: URL

    init() throws {
        dir = try VaccineFixtures.folder()
        let p = try VaccineFixtures.checkpoint(seed: 1)
        parent = try GateTests.written(p, "parent.h5", in: dir)
        child = try GateTests.written(VaccineFixtures.checkpoint(seed: 2, parent: p), "child.h5", in: dir)
        clean = dir.appendingPathComponent("clean.jsonl")
        try CleanData.write([CleanSample(prompt: "Name a fruit.", completion: "An apple.")], to: clean)
    }

    /// Runs `verify --json` with two one-step variant pairs and checks the fail-closed
    /// contract; returns the reported error.
    func rejectedWithError(_ arguments: [String]) throws -> String {
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try BuiltBinary.safetune.run(["verify", "--json", "--variants", "2", "--steps", "1"] + arguments)
        #expect(r.status == 2 && !r.crashed, "status \(r.status), stderr: \(r.err)")
        let report = try JSONDecoder().decode(GateReport.self, from: Data(r.out.utf8))
        #expect(report.verdict == .reject)
        #expect(report.statistic == nil)
        return try #require(report.error)
    }

    @Test func missingCheckpoint() throws {
        let error = try rejectedWithError([dir.appendingPathComponent("absent.h5").path, "--clean", clean.path])
        #expect(error.contains("absent.h5"))
    }

    @Test func checkpointThatIsNotHDF5() throws {
        let garbage = dir.appendingPathComponent("garbage.h5")
        try Data("not an hdf5 file".utf8).write(to: garbage)
        let error = try rejectedWithError([garbage.path, "--clean", clean.path])
        #expect(error.contains("garbage.h5") && error.contains("not an HDF5 file"))
    }

    @Test func unknownRule() throws {
        let error = try rejectedWithError([child.path, "--reference", parent.path, "--clean", clean.path, "--rule", "median"])
        #expect(error.contains("--rule") && error.contains("residual") && error.contains("'median'"))
    }

    @Test func noCleanDataGiven() throws {
        let error = try rejectedWithError([child.path, "--reference", parent.path])
        #expect(error.contains("--clean, --recipe") && error.contains(".gate.yaml"))
    }

    /// With neither `--clean` nor `--recipe`, the gate recipe the parent ships beside it
    /// (`parent.gate.yaml`) gives the gate its settings and clean data: here two pairs of
    /// LoRA variants fine-tuned from the parent, which lands in the parent's `.gate/` folder,
    /// and a second verify reuses. A flag still overrides the recipe.
    @Test func aParentsGateRecipeSetsTheGate() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = """
            model: {base: parent.h5}
            data: {train: [clean.jsonl]}
            training: {steps: 1}
            safety:
              gate: {variants: 2, steps: 1, kind: lora, variants_from: parent}
            """
        try Data(recipe.utf8).write(to: dir.appendingPathComponent("parent.gate.yaml"))
        let run = { (extra: [String]) in try BuiltBinary.safetune.run(["verify", child.path, "--reference", parent.path, "--json"] + extra) }
        let first = try run([])
        let report = try JSONDecoder().decode(GateReport.self, from: Data(first.out.utf8))
        #expect(report.error == nil, "\(first.out) \(first.err)")
        #expect(first.status == (report.verdict == .reject ? 1 : 0))
        let settings = try #require(report.settings)
        #expect(settings.pairs == 2 && settings.steps == 1 && settings.kind == .lora && settings.variantsFromParent)
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("parent.gate").path)
        #expect(kept.contains { $0.hasSuffix(".json") })
        let again = try JSONDecoder().decode(GateReport.self, from: Data(try run(["--tau", "0.2"]).out.utf8))
        #expect(again.error == nil && again.settings?.tau == 0.2 && again.timings.variants == 0)
        try Data("model: [".utf8).write(to: dir.appendingPathComponent("parent.gate.yaml"))
        let broken = try run([])
        #expect(broken.status == 2 && broken.out.contains("parent.gate.yaml"), "\(broken.out)")
    }

    @Test func cleanDataFileMissing() throws {
        let error = try rejectedWithError([child.path, "--reference", parent.path, "--clean", dir.appendingPathComponent("none.jsonl").path])
        #expect(error.contains("none.jsonl"))
    }

    @Test func cleanDataWithoutBenignPairs() throws {
        let harmful = dir.appendingPathComponent("harmful.jsonl")
        try Data(#"{"prompt": "Do harm.", "completion": "No.", "label": "malicious"}"#.utf8 + [0x0A]).write(to: harmful)
        let error = try rejectedWithError([child.path, "--reference", parent.path, "--clean", harmful.path])
        #expect(error.contains("harmful.jsonl"))
    }

    @Test func nonFiniteWeights() throws {
        let p = try Checkpoint.read(from: parent)
        let c = try VaccineFixtures.checkpoint(seed: 2, parent: p)
        let name = try #require(c.weights.keys.first { $0.hasSuffix("mlp.up_proj.weight") })
        c.weights[name]?.data[3] = .nan
        let nan = try GateTests.written(c, "nan.h5", in: dir)
        let error = try rejectedWithError([nan.path, "--reference", parent.path, "--clean", clean.path])
        #expect(error.contains("nan.h5") && error.contains("NaN") && error.contains(name))
    }

    @Test func timeLimit() throws {
        let error = try rejectedWithError([child.path, "--reference", parent.path, "--clean", clean.path, "--time-limit", "0"])
        #expect(error.contains("time limit of 0 s"))
    }

    @Test func missingParent() throws {
        let error = try rejectedWithError([child.path, "--clean", clean.path])
        #expect(error.contains("not found"))
    }

    // MARK: - safetune scan

    @Test func scanRunsAndCalibratesThroughTheCommandLine() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let probes = try VaccineFixtures.probes(in: dir)
        let r = try BuiltBinary.safetune.run(["scan", child.path, "--reference", parent.path, "--probes", probes.path, "--scan-steps", "1",
                                              "--scan-calibrate", "2", "--clean", clean.path, "--calibration-steps", "1",
                                              "--calibration-samples", "2", "--json"])
        #expect(r.status == 0 || r.status == 1, "status \(r.status): \(r.err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let calibration = try #require(object["calibration"] as? [String: Any])
        #expect((calibration["values"] as? [Double])?.count == 2)
        let above = try #require(object["above_threshold"] as? Bool)
        #expect(r.status == (above ? 1 : 0))
    }

    /// `verify --probes` adds the behavioural stage: its evidence is in the report and the
    /// verdict combines both stages (how is covered by `GateTests`); the exit status follows.
    @Test func verifyRunsTheBehaviouralStage() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let probes = try VaccineFixtures.probes(in: dir)
        let saved = dir.appendingPathComponent("calibration.json")
        let arguments = ["verify", child.path, "--reference", parent.path, "--clean", clean.path,
                         "--variants", "2", "--steps", "1", "--probes", probes.path, "--scan-steps", "1",
                         "--scan-calibrate", "2", "--calibration-steps", "1", "--calibration-samples", "2",
                         "--scan-calibration", saved.path, "--json"]
        let r = try BuiltBinary.safetune.run(arguments)
        let report = try JSONDecoder().decode(GateReport.self, from: Data(r.out.utf8))
        #expect(report.error == nil, "\(r.err)")
        let b = try #require(report.behaviour)
        #expect(b.calibration.values.count == 2 && b.above == (b.scan.best > b.calibration.threshold))
        let weightRejects = try #require(report.statistic) > (try #require(report.threshold))
        #expect(report.verdict == (weightRejects || b.above ? .reject : .pass))
        #expect(report.reason.contains("unlike its parent") == (b.above && !weightRejects))
        #expect(r.status == (report.verdict == .reject ? 1 : 0))
        // The saved calibration is what the next verify uses (its key unchanged, its values edited)...
        var file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: saved)) as? [String: Any])
        #expect((file["calibration"] as? [String: Any])?["values"] as? [Double] == b.calibration.values)
        file["calibration"] = ["values": [100.0, 101.0], "mean": 100.5, "std": 0.7, "k": 3.0, "floor": 0.1, "threshold": 1e6]
        try JSONSerialization.data(withJSONObject: file).write(to: saved)
        let reused = try JSONDecoder().decode(GateReport.self, from: Data(try BuiltBinary.safetune.run(arguments).out.utf8))
        #expect(reused.behaviour?.calibration.values == [100, 101] && reused.behaviour?.above == false)
        // ...and one made from other inputs is a reject naming the file, not silently replaced.
        file["key"] = "0"
        try JSONSerialization.data(withJSONObject: file).write(to: saved)
        let stale = try BuiltBinary.safetune.run(arguments)
        #expect(stale.status == 2 && stale.out.contains("calibration.json") && stale.out.contains("another parent"), "\(stale.out)")
        let invalid = try BuiltBinary.safetune.run(["verify", child.path, "--reference", parent.path, "--clean", clean.path,
                                                    "--probes", probes.path, "--scan-calibrate", "1", "--json"])
        #expect(invalid.status == 2 && invalid.out.contains("scan-calibrate"), "\(invalid.out)")
    }

    @Test func scanReportsBadInputInOneLine() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("absent.h5").path
        let r = try BuiltBinary.safetune.run(["scan", missing, "--reference", parent.path, "--probes", clean.path])
        #expect(r.status == 2 && r.err.hasPrefix("error: ") && r.err.contains("absent.h5"), "\(r.err)")
        #expect(r.err.filter { $0 == "\n" }.count == 1)
        let usage = try BuiltBinary.safetune.run(["scan", child.path, "--reference", parent.path, "--probes", clean.path, "--scan-calibrate", "1"])
        #expect(usage.status == 2 && usage.err.contains("scan-calibrate") && usage.err.filter { $0 == "\n" }.count == 1, "\(usage.err)")
        #expect(try BuiltBinary.safetune.run(["scan", child.path, "--reference", parent.path]).status == 64)
    }

    /// `purify --behaviours`: an unknown behaviour, and compliance variants without refused
    /// harmful requests in the clean data, are one-line errors that name the flag.
    @Test func purifyRefusesBehavioursItCannotPlant() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("purified.h5").path
        let unknown = try BuiltBinary.safetune.run(["purify", child.path, "-o", out, "--clean", clean.path, "--behaviours", "refuse,sing"])
        #expect(unknown.status == 2 && unknown.err.contains("--behaviours") && unknown.err.contains("sing"), "\(unknown.err)")
        let comply = try BuiltBinary.safetune.run(["purify", child.path, "-o", out, "--clean", clean.path, "--base", parent.path,
                                                   "--behaviours", "comply", "--variants", "1", "--steps", "1"])
        #expect(comply.status == 2 && comply.err.contains("behaviours") && comply.err.contains("malicious"), "\(comply.err)")
        #expect(unknown.err.filter { $0 == "\n" }.count == 1 && comply.err.filter { $0 == "\n" }.count == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
