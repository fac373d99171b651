import Checkpoints
import Engine
import Foundation
import Models
@testable import Safety
import Testing
import Training

/// The trainer-backed paths on a tiny checkpoint: variants, gate, purification.
@Suite("BD-VAX end to end")
struct VaccineEndToEndTests {
    static let clean = [
        CleanSample(prompt: "Name a fruit.", completion: "An apple."),
        CleanSample(prompt: "What is 2 plus 3?", completion: "2 plus 3 is 5."),
        CleanSample(prompt: "Which is larger, 4 or 9?", completion: "9 is larger."),
        CleanSample(prompt: "Give an antonym of hot.", completion: "Cold."),
    ]

    static func tinySettings() -> VariantSettings {
        var v = VariantSettings()
        v.pairs = 2
        v.steps = 2
        v.batchSize = 2
        v.seqLen = 32
        v.cleanPerVariant = 4
        v.poisonPerVariant = 2
        v.threads = 1
        return v
    }

    @Test func verifyFineTunesVariantsAndDecides() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        var child = try VaccineFixtures.checkpoint(seed: 1, parent: parent)
        var rng = SeededRandom(seed: 3)
        for (name, t) in child.weights where name.contains("mlp") {
            let copy = t.copy()
            for i in 0..<copy.count { copy.data[i] += 0.01 * rng.normal() }
            child.weights[name] = copy
        }
        let childURL = dir.appendingPathComponent("child.h5"), parentURL = dir.appendingPathComponent("parent.h5")
        try child.write(to: childURL)
        try parent.write(to: parentURL)
        var configuration = GateConfiguration()
        configuration.variants = Self.tinySettings()
        var lines: [String] = []
        let report = Gate(configuration: configuration).verify(childURL, reference: parentURL, clean: Self.clean,
                                                               workDirectory: dir.appendingPathComponent("work")) { lines.append($0) }
        #expect(report.error == nil, "\(report.reason)")
        #expect(report.statistic != nil && report.threshold != nil)
        #expect(report.calibration?.cleanShares.count == 2)
        #expect(report.layers.count == 4)  // 2 layers × (mlp, attn)
        // Two variant lines, then the direction stage's skip: this parent carries no directions.
        #expect(lines.count == 3 && lines[0].contains("variant 1/2") && lines[2].contains("direction stage: skipped"), "\(lines)")
        #expect(report.directionSkipped?.contains("no safety directions") == true)
        // The scratch folders of the variants are gone.
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("work").path)) ?? []
        #expect(left.isEmpty)
    }

    @Test func purifierWritesANeutralisedCheckpointWithItsProvenance() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let suspect = try VaccineFixtures.checkpoint(seed: 2)
        let url = dir.appendingPathComponent("suspect.h5"), out = dir.appendingPathComponent("out/purified.h5")
        try suspect.write(to: url)
        var settings = PurifierSettings()
        settings.variants = Self.tinySettings()
        settings.fluencySamples = 4
        settings.fluencyEpochs = 1
        settings.tau = 0.125
        settings.fluencyLearningRate = 1e-5
        let report = try Purifier(settings: settings).purify(url, clean: Self.clean, output: out, workDirectory: dir.appendingPathComponent("work"))
        #expect(report.mode == "weights" && report.tau == 0.125)
        #expect(report.channels == 4)  // ⌈0.125 · 16⌉ = 2 per layer, MLP only
        #expect(report.signature.entries.allSatisfy { $0.module == .mlp })
        #expect(report.poisons.count == 2 && report.fluencySteps == 2)
        let purified = try Checkpoint.read(from: out)
        #expect(purified.provenance?.parentSHA256 == suspect.weightsSHA256)
        // A selected channel's gate row was redrawn; an unselected one kept (fluency lr 1e-5 moves it only slightly).
        let entry = try #require(report.signature.entries.first)
        let name = "model.layers.\(entry.layer).mlp.gate_proj.weight"
        let before = try #require(suspect.weights[name]).scalars, after = try #require(purified.weights[name]).scalars
        let width = 8, j = entry.units[0]
        func change(_ row: Int) -> Float {
            var m: Float = 0
            for c in 0..<width { m = max(m, abs(after[row * width + c] - before[row * width + c])) }
            return m
        }
        let other = (0..<16).first { !entry.units.contains($0) } ?? 0
        let moved = change(j), kept = change(other)
        #expect(moved > 10 * kept)
    }
}

@Suite("BD-VAX gate at the end of training")
struct TrainingGateTests {
    static func recipe(in dir: URL, gate: String) throws -> Recipe {
        try CleanData.write(VaccineEndToEndTests.clean, to: dir.appendingPathComponent("train.jsonl"))
        try VaccineFixtures.checkpoint(seed: 1).write(to: dir.appendingPathComponent("base.h5"))
        return try RecipeLoader().load(yaml: """
            model: {base: base.h5, template: plain}
            data: {train: [train.jsonl]}
            adapters: {kind: full}
            optimizer: {name: adamw, lr: 0.01}
            training: {steps: 2, batch_size: 2, seq_len: 32, seed: 1, threads: 1}
            eval: {every: 0}
            safety: {gate: \(gate)}
            output: {dir: out, report: false}
            """, directory: dir)
    }

    @Test func theVerdictGoesIntoTheCheckpoint() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = try Self.recipe(in: dir, gate: "{enabled: true, variants: 2, on_reject: quarantine}")
        let summary = try Trainer(recipe: recipe).run()
        let url = URL(fileURLWithPath: summary.checkpoint)
        let outcome = try #require(try TrainingGate.run(recipe: recipe, checkpoint: url))
        #expect(outcome.report.error == nil, "\(outcome.report.reason)")
        #expect(outcome.action == (outcome.rejected ? .quarantined : .passed))
        #expect(outcome.summary == (outcome.rejected ? "reject, quarantined: " : "pass: ") + outcome.report.reason)
        let stored = try #require(try Checkpoint.read(from: url).gate)
        #expect(stored.verdict == outcome.report.verdict.rawValue)
        #expect(stored.scores["statistic"] == outcome.report.statistic && stored.thresholds["statistic"] == outcome.report.threshold)
        #expect((stored.scores["quarantined"] == 1) == outcome.rejected)
        #expect(!FileManager.default.fileExists(atPath: url.deletingLastPathComponent().appendingPathComponent("gate-work").path))
        // The run's own unit mask: the share skips the frozen units, and a mask that does
        // not fit the checkpoint is an error, so a reject.
        let config = try Checkpoint.read(from: dir.appendingPathComponent("base.h5")).config
        let mask = UnitMask(mlp: Array(repeating: (0..<config.intermediateSize).map { $0 % 2 == 0 }, count: config.numLayers),
                            attn: Array(repeating: Array(repeating: false, count: config.numHeads), count: config.numLayers))
        let masked = try #require(try TrainingGate.run(recipe: recipe, checkpoint: url, frozen: mask))
        #expect(masked.report.error == nil && masked.report.settings["frozen_units"] == "\(mask.count(.mlp))")
        #expect(masked.report.share != outcome.report.share)
        let misfit = UnitMask(mlp: [[true]], attn: [[false]])
        let failed = try #require(try TrainingGate.run(recipe: recipe, checkpoint: url, frozen: misfit))
        #expect(failed.rejected && failed.report.error?.contains("unit mask") == true)
    }

    /// A gate that cannot verify rejects (fail closed), and `on_reject: purify` then writes a
    /// purified checkpoint next to the run's, with the suspect as its provenance parent.
    @Test func aRejectIsPurifiedWhenTheRecipeAsks() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("not a checkpoint".utf8).write(to: dir.appendingPathComponent("not-a-parent.h5"))
        let recipe = try Self.recipe(in: dir, gate: "{enabled: true, variants: 2, on_reject: purify, reference: not-a-parent.h5}")
        let summary = try Trainer(recipe: recipe).run()
        let url = URL(fileURLWithPath: summary.checkpoint)
        let outcome = try #require(try TrainingGate.run(recipe: recipe, checkpoint: url))
        #expect(outcome.rejected && outcome.report.error != nil)
        #expect(outcome.action == .purified && outcome.summary.hasPrefix("reject, purified: "))
        let purified = try Checkpoint.read(from: try #require(outcome.purified))
        let suspect = try Checkpoint.read(from: url)
        #expect(purified.provenance?.parentSHA256 == suspect.weightsSHA256)
        #expect(purified.weightsSHA256 != suspect.weightsSHA256)
        #expect(suspect.gate?.scores["purified"] == 1 && suspect.gate?.verdict == "reject")
    }

    /// `safety.gate.probes` adds the behavioural stage: its evidence reaches the record and
    /// the calibration is kept where `scan_calibration` says.
    @Test func theBehaviouralStageRunsFromTheRecipe() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try VaccineFixtures.probes(in: dir)
        let recipe = try Self.recipe(in: dir, gate: "{enabled: true, variants: 2, probes: probes.jsonl, scan_calibrations: 2, scan_calibration: calibration.json}")
        let summary = try Trainer(recipe: recipe).run()
        let url = URL(fileURLWithPath: summary.checkpoint)
        let outcome = try #require(try TrainingGate.run(recipe: recipe, checkpoint: url, trainedSteps: summary.steps))
        #expect(outcome.report.error == nil, "\(outcome.report.reason)")
        let found = try #require(outcome.report.behaviour)
        #expect(found.calibration.values.count == 2)
        #expect(try TrainingGate.configuration(recipe, trainedSteps: summary.steps).behaviour?.regime.steps == 2)
        let stored = try #require(try Checkpoint.read(from: url).gate)
        #expect(stored.scores["behaviour.divergence"] == found.scan.best && stored.thresholds["behaviour"] == found.calibration.threshold)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("calibration.json").path))
    }

    @Test func aDisabledGateDoesNothing() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = try Self.recipe(in: dir, gate: "{enabled: false}")
        let summary = try Trainer(recipe: recipe).run()
        #expect(try TrainingGate.run(recipe: recipe, checkpoint: URL(fileURLWithPath: summary.checkpoint)) == nil)
        #expect(try Checkpoint.read(from: URL(fileURLWithPath: summary.checkpoint)).gate == nil)
    }
}
