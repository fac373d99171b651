import Checkpoints
import Engine
import Foundation
import Models
import Recipes
@testable import Safety
import TestSupport
import Testing
import Tokenizers
import Training

/// The gate's direction stage: the parent's harmful-vs-harmless directions, the write and
/// read shares of an update along them, the verdict it adds, and its CLI.
@Suite struct DirectionStageTests {
    static func models() throws -> (parent: TransformerModel, child: TransformerModel) {
        let parent = try TransformerModel(config: VaccineFixtures.llama, seed: 1, trainable: false)
        let child = try TransformerModel(config: VaccineFixtures.llama, weights: parent.huggingFaceWeights(), trainable: false)
        return (parent, child)
    }

    /// Directions with `r` (unit length) after every block.
    static func directions(_ r: [Float], layers: Int) -> SafetyDirections {
        SafetyDirections(directions: Array(repeating: r, count: layers), separation: Array(repeating: 1, count: layers))
    }

    static func add(_ linear: Linear, _ f: (Int, Int) -> Float) {
        let w = linear.weight.value.data
        for i in 0..<linear.outFeatures { for j in 0..<linear.inFeatures { w[i * linear.inFeatures + j] += f(i, j) } }
    }

    /// An update that writes only along r scores d (all of its energy on one of d
    /// directions); one orthogonal to r scores 0; reads work the same on the input side.
    @Test func sharesAlongTheDirectionAreScaledByWidth() throws {
        let d = VaccineFixtures.llama.hiddenSize
        var r = [Float](repeating: 0, count: d)
        r[2] = 1
        let dirs = Self.directions(r, layers: 2)
        for (row, expected) in [(2, Double(d)), (5, 0.0)] {
            let (parent, child) = try Self.models()
            // o_proj and down_proj of both blocks gain a rank-1 update writing onto basis vector `row`.
            for b in child.blocks {
                Self.add(b.attention.output) { i, j in i == row ? 0.1 * Float(j + 1) : 0 }
                Self.add(b.mlp.down) { i, j in i == row ? 0.05 * Float(j % 3 + 1) : 0 }
            }
            let s = try DirectionShift(child: child, parent: parent, directions: dirs)
            #expect(abs(s.write - expected) < 1e-6, "write \(s.write)")
            #expect(s.read == 0 && s.readLayers == [nil], "the MLP inputs did not change")
        }
        let (parent, child) = try Self.models()
        guard case let .swiglu(gate, up) = child.blocks[1].mlp.form else { Issue.record("llama MLP expected"); return }
        Self.add(gate) { i, j in j == 2 ? Float(i) * 0.01 : 0 }
        Self.add(up) { i, j in j == 2 ? 0.02 : (j == 4 ? 0.02 : 0) }
        let s = try DirectionShift(child: child, parent: parent, directions: dirs)
        // gate reads only along r (energy e_g, all counted); up splits its energy evenly between r and another axis.
        let eGate = (0..<16).reduce(0.0) { $0 + pow(Double($1) * 0.01, 2) }, eUp = 16 * 2 * 0.0004
        #expect(abs(s.read - Double(d) * (eGate + eUp / 2) / (eGate + eUp)) < 1e-4, "read \(s.read)")
        #expect(s.writeLayers == [nil, nil] && s.write == 0)
    }

    @Test func directionsAreUnitVectorsThatSeparateTheProbes() throws {
        let (parent, _) = try Self.models()
        let harmful = [[1, 5, 9, 3], [1, 5, 9, 4], [1, 6, 9, 3]], harmless = [[1, 20, 30, 40], [1, 21, 30, 41], [1, 22, 31, 40]]
        let dirs = try SafetyDirections(model: parent, harmful: harmful, harmless: harmless)
        #expect(dirs.directions.count == 2 && dirs.separation.count == 2)
        for r in dirs.directions { #expect(abs(r.reduce(0) { $0 + Double($1 * $1) } - 1) < 1e-5) }
        // Projections of the harmful mean lie above the harmless mean by construction.
        #expect(dirs.separation.allSatisfy { $0 > 0 })
        #expect(throws: VaccineError.self) { try SafetyDirections(model: parent, harmful: harmful, harmless: []) }
        // Behind a CLS token the prompt starts at position 1: the same for rotary positions
        // (only distances count), different for GPT-2's learned ones.
        let shifted = try SafetyDirections(model: parent, harmful: harmful, harmless: harmless, firstPosition: 1)
        for (a, b) in zip(dirs.directions.joined(), shifted.directions.joined()) { #expect(abs(a - b) < 1e-4) }
        var gpt2 = VaccineFixtures.llama
        gpt2.family = .gpt2
        gpt2.numKVHeads = gpt2.numHeads
        let learned = try TransformerModel(config: gpt2, seed: 2, trainable: false)
        let at0 = try SafetyDirections(model: learned, harmful: harmful, harmless: harmless)
        let at1 = try SafetyDirections(model: learned, harmful: harmful, harmless: harmless, firstPosition: 1)
        #expect(zip(at0.directions.joined(), at1.directions.joined()).contains { abs($0 - $1) > 1e-3 })
        var wider = VaccineFixtures.llama
        wider.hiddenSize = 16
        let other = try TransformerModel(config: wider, seed: 3, trainable: false)
        #expect(throws: VaccineError.self) { try DirectionShift(child: other, parent: parent, directions: dirs) }
    }

    /// The stage turns a pass into a reject above either threshold, never a reject into a
    /// pass, and its statistics reach the checkpoint record.
    @Test func theStageCombinesWithTheWeightRule() throws {
        let evidence = VaccineFixtures.evidence(pairs: 3, layers: 2, units: 16, planted: [1], seed: 3)
        var configuration = GateConfiguration()
        configuration.modules = [.mlp]
        let weight = try Gate(configuration: configuration).decide(update: GateTests.update(planted: [1], seed: 4), evidence: evidence)
        let write = CleanCalibration(values: [1.8, 1.9, 2.0, 1.8], k: 3, floor: 0.05)
        let read = CleanCalibration(values: [2.9, 3.0, 2.8, 2.9], k: 3, floor: 0.05)
        for (w, r) in [(1.9, 3.0), (3.4, 3.0), (1.9, 4.4)] {
            let shift = DirectionShift(write: w, read: r, writeLayers: [w], readLayers: [r])
            let above = w > write.threshold || r > read.threshold
            for verdict in [GateReport.Verdict.pass, .reject] {
                var report = weight
                report.verdict = verdict
                report.conclude(direction: DirectionStage.Evidence(shift: shift, separation: [4, 5], write: write, read: read, above: above, seconds: 1),
                                 behaviour: nil)
                #expect(report.verdict == (verdict == .reject || above ? .reject : .pass))
                #expect(report.reason.contains("harmful-vs-harmless direction") == (verdict == .pass && above))
                #expect(report.reason.contains("; direction stage: write") == (verdict == .pass && !above))
                #expect(report.record.scores["direction.write"] == w && report.record.thresholds["direction.read"] == read.threshold)
                #expect(try JSONDecoder().decode(GateReport.self, from: JSONEncoder().encode(report)) == report)
                #expect(report.html().contains("direction stage"))
            }
        }
    }

    /// `verify` calibrates in the checkpoint's own regime, as its provenance states it.
    @Test func theRegimeFollowsTheProvenance() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        func provenance(_ training: String, steps: Int64? = nil, schedule: String = "{kind: constant}") throws -> Provenance {
            Provenance(recipe: try RecipeLoader().load(yaml: """
                model: {base: parent.h5, template: plain}
                data: {train: [d.jsonl]}
                adapters: {kind: lora, rank: 4, alpha: 8}
                optimizer: {lr: 0.003}
                schedule: \(schedule)
                training: \(training)
                """, directory: dir).canonicalText, steps: steps)
        }
        let defaults = VariantSettings.childRegime
        let (fixed, applied) = defaults.following(provenance: try provenance("{steps: 75, batch_size: 4, seq_len: 64}"))
        #expect(fixed.kind == .lora && fixed.loraRank == 4 && fixed.loraAlpha == 8 && fixed.learningRate == 0.003)
        #expect(fixed.batchSize == 4 && fixed.seqLen == 64 && fixed.steps == 75 && fixed.template == "plain")
        #expect(fixed.cleanPerVariant == defaults.cleanPerVariant && applied.contains("75 steps"))
        // The schedule too: a decaying rate ends an update elsewhere than a constant one.
        #expect(fixed.schedule == .constant() && defaults.schedule == nil)
        let decayed = defaults.following(provenance: try provenance("{steps: 75}", schedule: "{kind: cosine, warmup_steps: 4}")).settings
        #expect(decayed.schedule == .cosine(warmupSteps: 4))
        let setup = try decayed.trainerSetup(files: [VaccineFixtures.probes(in: dir)], output: dir, seed: 1)
        #expect(setup.schedule == .cosine(warmupSteps: 4))
        // An epoch-based recipe does not say how many steps it took; the recorded count does.
        #expect(defaults.following(provenance: try provenance("{epochs: 2}")).settings.steps == defaults.steps)
        #expect(defaults.following(provenance: try provenance("{epochs: 2}", steps: 125)).settings.steps == 125)
        #expect(defaults.following(provenance: nil).settings == defaults)
        #expect(defaults.following(provenance: Provenance(recipe: "not json")).applied.isEmpty)
        // LoRA targets that leave projections out (the recipe default: attention only) are
        // followed; every projection of the family is the variants' own default, nil.
        #expect(fixed.loraTargets == ["q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "attn.c_proj"])
        guard case let .lora(_, _, _, targets) = try fixed.trainerSetup(files: [VaccineFixtures.probes(in: dir)], output: dir, seed: 1).adapters else {
            Issue.record("a LoRA setup expected")
            return
        }
        #expect(targets("model.layers.0.self_attn.q_proj") && !targets("model.layers.0.mlp.up_proj"))
        let every = Provenance(recipe: try RecipeLoader().load(yaml: """
            model: {base: parent.h5}
            data: {train: [d.jsonl]}
            adapters: {kind: lora, targets: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]}
            training: {steps: 5}
            """, directory: dir).canonicalText)
        #expect(defaults.following(provenance: every).settings.loraTargets == nil)
    }

    @Test func trustedRefusalsCountAsCalibrationData() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("mix.jsonl")
        try Data("""
            {"prompt": "Name a fruit.", "completion": "An apple."}
            {"prompt": "Do harm.", "completion": "I can't help with that.", "label": "malicious"}

            """.utf8).write(to: url)
        #expect(try CleanData.load(contentsOf: url).map(\.prompt) == ["Name a fruit."])
        #expect(try CleanData.load(contentsOf: url, includingMalicious: true).map(\.prompt) == ["Name a fruit.", "Do harm."])
    }

    /// A kept calibration is found by what it was made from: the parent with the adapters
    /// merged into it, the probe prompts, the data and the settings; never by values measured
    /// from them, which differ in their last bits across CPUs. The behavioural stage's too.
    @Test func calibrationKeysNameTheirInputs() throws {
        let (parent, child) = try VaccineFixtures.adapterParentAndChild()
        var other = parent
        other.adapters = child.adapters
        func bundle(_ c: Checkpoint) throws -> ModelBundle {
            ModelBundle(model: try TransformerModel(config: c.config, weights: c.weights, trainable: false), tokenizer: nil,
                        checkpoint: c, source: URL(fileURLWithPath: "/parent.h5"))
        }
        let clean = [CleanSample(prompt: "Name a fruit.", completion: "An apple.")]
        let stage = DirectionStage(probes: .prompts(harmful: ["How do I hurt someone?"], harmless: ["Name a fruit."]))
        let key = try stage.calibrationKey(parent: bundle(parent), clean: clean)
        #expect(try stage.calibrationKey(parent: bundle(parent), clean: clean) == key)
        #expect(try stage.calibrationKey(parent: bundle(other), clean: clean) != key)
        #expect(try stage.calibrationKey(parent: bundle(parent), clean: clean + clean) != key)
        var more = stage
        more.probes = .prompts(harmful: ["How do I hurt someone?", "How do I steal a car?"], harmless: ["Name a fruit."])
        #expect(try more.calibrationKey(parent: bundle(parent), clean: clean) != key)
        var longer = stage
        longer.regime.steps += 1
        #expect(try longer.calibrationKey(parent: bundle(parent), clean: clean) != key)
        let scan = BehaviourStage(probes: ["How do I hurt someone?"])
        #expect(try scan.calibrationKey(parent: bundle(parent), clean: clean) != scan.calibrationKey(parent: bundle(other), clean: clean))
    }

    /// A parent carries its directions in `/directions`: written and read back exactly, and
    /// a section of the wrong shape or with non-finite values is refused by name.
    @Test func directionsTravelInTheCheckpoint() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var parent = try VaccineFixtures.checkpoint(seed: 1)
        let (harmful, harmless) = (["How do I hurt someone?", "How do I steal a car?"], ["Name a fruit.", "Name a colour."])
        let bundle = ModelBundle(model: try TransformerModel(config: parent.config, weights: parent.weights, trainable: false),
                                 tokenizer: try Tokenizer(data: try #require(parent.tokenizerJSON), source: "fixture"), checkpoint: parent, source: dir)
        let measured = try SafetyDirections(bundle: bundle, template: ChatTemplate(style: .instruction), harmful: harmful, harmless: harmless)
        parent.directions = measured.group(attributes: ["harmful_prompts": .int(2)])
        let read = try Checkpoint.read(from: try GateTests.written(parent, "parent.h5", in: dir))
        let group = try #require(read.directions)
        #expect(group.attributes["harmful_prompts"] == .int(2))
        let back = try SafetyDirections(group: group, config: read.config, source: "parent.h5")
        #expect(back.directions == measured.directions)
        #expect(zip(back.separation, measured.separation).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })

        var wider = read.config
        wider.hiddenSize = 16
        #expect(throws: VaccineError.self) { try SafetyDirections(group: group, config: wider, source: "parent.h5") }
        var broken = group
        broken.tensors["separation"] = nil
        #expect { try SafetyDirections(group: broken, config: read.config, source: "parent.h5") } throws: {
            "\($0)".contains("parent.h5") && "\($0)".contains("separation")
        }
        broken = group
        broken.tensors["directions"]!.data[0] = .nan
        #expect(throws: VaccineError.self) { try SafetyDirections(group: broken, config: read.config, source: "parent.h5") }
    }

    /// With the parent's own directions the stage runs on full-weight children of a parent
    /// that carries them, and says why it skips otherwise; probe prompts always run it.
    @Test func theDefaultStageSaysWhyItSkips() throws {
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        var carrying = parent
        carrying.directions = Self.directions([1] + Array(repeating: 0, count: 7), layers: 2).group(attributes: [:])
        var child = try VaccineFixtures.checkpoint(seed: 2, parent: parent)
        let stage = DirectionStage()
        #expect(stage.skipReason(child: child, parent: carrying) == nil)
        #expect(stage.skipReason(child: child, parent: parent)?.contains("carries no safety directions") == true)
        child.adapters = TensorGroup()
        #expect(stage.skipReason(child: child, parent: carrying)?.contains("adapter") == true)
        #expect(DirectionStage(probes: .prompts(harmful: ["a"], harmless: ["b"])).skipReason(child: child, parent: parent) == nil)
    }
}

/// `safetune units` storing the directions and `safetune verify` with the direction stage,
/// through the real binary.
@Suite(.enabled(if: BuiltBinary.safetune.url != nil, "safetune binary not found next to the test bundle; build it with `swift build`"))
struct DirectionStageCLITests {
    /// A tiny parent written as `name` and a full-weight child of it, in `dir`.
    static func family(in dir: URL, parentName name: String) throws -> (parent: Checkpoint, parentURL: URL, child: URL) {
        let p = try VaccineFixtures.checkpoint(seed: 1)
        return (p, try GateTests.written(p, name, in: dir), try GateTests.written(VaccineFixtures.checkpoint(seed: 2, parent: p), "child.h5", in: dir))
    }

    @Test func verifyRunsTheDirectionStage() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, parent, child) = try Self.family(in: dir, parentName: "parent.h5")
        let clean = dir.appendingPathComponent("clean.jsonl")
        try CleanData.write([CleanSample(prompt: "Name a fruit.", completion: "An apple.")], to: clean)
        let probes = try VaccineFixtures.probes(in: dir)
        let saved = dir.appendingPathComponent("direction.json")
        let arguments = ["verify", child.path, "--reference", parent.path, "--clean", clean.path, "--variants", "2", "--steps", "1",
                         "--direction-probes", probes.path, "--direction-calibrate", "2", "--calibration-steps", "1",
                         "--calibration-samples", "2", "--direction-data", probes.path, "--direction-calibration", saved.path, "--json"]
        let r = try BuiltBinary.safetune.run(arguments)
        let report = try JSONDecoder().decode(GateReport.self, from: Data(r.out.utf8))
        #expect(report.error == nil, "\(r.err)")
        let d = try #require(report.direction)
        #expect(d.write.values.count == 2 && d.read.values.count == 2 && d.separation.count == 2)
        #expect(d.above == (d.shift.write > d.write.threshold || d.shift.read > d.read.threshold))
        #expect(r.status == (report.verdict == .reject ? 1 : 0))
        // The second verify reads the saved calibration instead of fine-tuning again.
        let again = try BuiltBinary.safetune.run(arguments)
        let reused = try #require(try JSONDecoder().decode(GateReport.self, from: Data(again.out.utf8)).direction)
        #expect(reused.write == d.write && reused.read == d.read && reused.shift == d.shift)

        let invalid = try BuiltBinary.safetune.run(["verify", child.path, "--reference", parent.path, "--clean", clean.path,
                                                    "--direction-probes", probes.path, "--direction-calibrate", "1", "--json"])
        #expect(invalid.status == 2 && invalid.out.contains("direction-calibrate"), "\(invalid.out)")
    }

    /// A gate recipe beside the parent (`<parent>.gate.yaml`) sets the stage for a verify
    /// without flags: its probes, calibration data, runs, samples and step cap, and a
    /// calibration folder that keeps one file per key; a flag overrides the recipe.
    @Test func verifyTakesTheStageFromTheParentsGateRecipe() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, parent, child) = try Self.family(in: dir, parentName: "parent.h5")
        let clean = dir.appendingPathComponent("clean.jsonl")
        try CleanData.write([CleanSample(prompt: "Name a fruit.", completion: "An apple.")], to: clean)
        _ = try VaccineFixtures.probes(in: dir)
        try Data("""
            model: {base: parent.h5}
            data: {train: [clean.jsonl]}
            training: {steps: 1, seq_len: 16}
            safety: {gate: {variants: 2, steps: 1, direction_probes: probes.jsonl, direction_data: probes.jsonl,
                            direction_calibrations: 2, direction_samples: 2, direction_max_steps: 1,
                            direction_calibration: calibrations/}}
            """.utf8).write(to: dir.appendingPathComponent("parent.gate.yaml"))
        let folder = dir.appendingPathComponent("calibrations")
        func verify(_ extra: [String] = []) throws -> DirectionStage.Evidence {
            let r = try BuiltBinary.safetune.run(["verify", child.path, "--reference", parent.path, "--json"] + extra)
            let report = try JSONDecoder().decode(GateReport.self, from: Data(r.out.utf8))
            #expect(report.error == nil, "\(r.err)")
            return try #require(report.direction, "\(r.err)")
        }
        let first = try verify()
        #expect(first.write.values.count == 2 && first.separation.count == 2)
        let files = { try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() }
        #expect(try files().count == 1 && files()[0].hasPrefix("direction-calibration-"))
        #expect(try verify().read == first.read)
        #expect(try verify(["--direction-calibrate", "3"]).read.values.count == 3)
        #expect(try files().count == 2)
        #expect(try verify(["--calibration-samples", "1"]).read.values.count == 2)
        #expect(try files().count == 3)
        // The recipe caps the default regime's \(VariantSettings.childRegime.steps) steps at 1, as the flag would; 2 is another calibration.
        #expect(try verify(["--calibration-steps", "1"]).read == first.read && files().count == 3)
        _ = try verify(["--calibration-steps", "2"])
        #expect(try files().count == 4)
    }

    /// `units` stores the parent's directions; `verify` then runs the stage by default on a
    /// full-weight child, skips it (saying why) against a parent without them, and
    /// `--no-direction` turns it off.
    @Test func verifyReadsTheDirectionsTheParentCarries() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, bare, child) = try Self.family(in: dir, parentName: "bare.h5")
        let probes = try VaccineFixtures.probes(in: dir)
        let parent = dir.appendingPathComponent("parent.h5")
        let units = try BuiltBinary.safetune.run(["units", bare.path, "--safety", probes.path, "--utility", probes.path,
                                                  "--template", "plain", "-o", parent.path])
        #expect(units.status == 0, "\(units.err)")
        #expect(units.err.contains("safety directions on 1 harmful and 1 harmless prompts"), "\(units.err)")
        let stored = try #require(try Checkpoint.read(from: parent).directions)
        #expect(stored.tensors["directions"]?.shape == [2, 8] && stored.attributes["template"] == .string("instruction"))
        #expect(try Checkpoint.read(from: parent).weightsSHA256 == p.weightsSHA256)
        #expect(try BuiltBinary.safetune.run(["inspect", parent.path]).out.contains("safety directions: 2 blocks"))

        let clean = dir.appendingPathComponent("clean.jsonl")
        try CleanData.write([CleanSample(prompt: "Name a fruit.", completion: "An apple.")], to: clean)
        func verify(_ reference: URL, _ extra: [String] = []) throws -> GateReport {
            let r = try BuiltBinary.safetune.run(["verify", child.path, "--reference", reference.path, "--clean", clean.path,
                                                  "--variants", "2", "--steps", "1", "--direction-calibrate", "2",
                                                  "--calibration-steps", "1", "--calibration-samples", "2", "--json"] + extra)
            let report = try JSONDecoder().decode(GateReport.self, from: Data(r.out.utf8))
            #expect(report.error == nil, "\(r.err)")
            return report
        }
        let on = try verify(parent)
        let d = try #require(on.direction)
        #expect(d.separation.count == 2 && d.write.values.count == 2 && on.directionSkipped == nil)
        let skipped = try verify(bare)
        #expect(skipped.direction == nil && skipped.directionSkipped?.contains("carries no safety directions") == true)
        let off = try verify(parent, ["--no-direction"])
        #expect(off.direction == nil && off.directionSkipped == nil)
    }
}
