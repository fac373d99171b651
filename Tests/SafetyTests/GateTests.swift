import Checkpoints
import Engine
import Foundation
import Models
@testable import Safety
import Testing
import TestSupport
import Training

@Suite("BD-VAX gate")
struct GateTests {
    /// A parent model and a child whose update either piles onto `planted` MLP channels or spreads evenly.
    static func update(planted: Set<Int>?, seed: UInt64) throws -> ChannelUpdates {
        let config = VaccineFixtures.llama
        let parent = try TransformerModel(config: config, seed: 1, trainable: false)
        let child = try TransformerModel(config: config, weights: parent.huggingFaceWeights(), trainable: false)
        var rng = SeededRandom(seed: seed)
        for (layer, block) in child.blocks.enumerated() {
            _ = layer
            for j in 0..<config.intermediateSize {
                let scale: Float = planted.map { $0.contains(j) ? 1 : 0.05 } ?? 0.3
                let slices = UnitSlices(block: block, module: .mlp, units: [j])
                for (linear, rows) in slices.outputRows {
                    for r in rows { for c in 0..<linear.inFeatures { linear.weight.value.data[r * linear.inFeatures + c] += scale * rng.normal() } }
                }
            }
        }
        return try ChannelUpdates(child, minus: parent, modules: [.mlp])
    }

    @Test func rejectsAnUpdateOnTheBackdoorChannelsAndPassesACleanOne() throws {
        let planted: Set<Int> = [3, 11]
        let evidence = VaccineFixtures.evidence(pairs: 4, layers: 2, units: 16, planted: planted, seed: 2)
        var configuration = GateConfiguration()
        configuration.tau = 0.125  // 2 of 16 channels per layer
        configuration.modules = [.mlp]
        let gate = Gate(configuration: configuration)

        let backdoored = try gate.decide(update: Self.update(planted: planted, seed: 5), evidence: evidence)
        #expect(backdoored.verdict == .reject)
        #expect(backdoored.layers.allSatisfy { $0.channels == 2 })
        let signature = Signature(scores: SignatureScorer().scores(evidence.deltas), tau: 0.125, modules: [.mlp])
        #expect(Set(signature.units(layer: 0, module: .mlp)) == planted)

        let clean = try gate.decide(update: Self.update(planted: nil, seed: 6), evidence: evidence)
        #expect(clean.verdict == .pass)
        let statistic = try #require(clean.statistic), threshold = try #require(clean.threshold)
        let backdooredStatistic = try #require(backdoored.statistic)
        #expect(statistic < threshold && threshold < backdooredStatistic)
        // Calibration: clean variant shares near 1 (relative to the signature's channels), backdoored ones far above.
        let c = try #require(clean.calibration)
        #expect(c.cleanShares.count == 4 && c.backdooredShares.count == 4)
        #expect(c.backdooredShares.min()! > c.cleanShares.max()!)
        #expect(abs(threshold - (c.cleanMean + 3 * max(c.cleanStd, 0.1 * c.cleanMean))) < 1e-12)
        // The stored record keeps the statistic, threshold and calibration.
        let record = clean.record
        #expect(record.verdict == "pass" && record.scores["statistic"] == statistic && record.thresholds["statistic"] == threshold)
        #expect(record.thresholds["clean_share_relative.0"] == c.cleanShares[0] && record.scores["share"] == nil)
        #expect(clean.html().contains("PASS"))
    }

    /// The share rule decides the same from kept statistics as from the variants themselves,
    /// so a gate can reuse a parent's variants; the cache's key follows parent, settings and data.
    @Test func keptVariantStatisticsDecideAsTheVariantsDo() throws {
        let planted: Set<Int> = [3, 11]
        let evidence = VaccineFixtures.evidence(pairs: 4, layers: 2, units: 16, planted: planted, seed: 2)
        // Scores of any subset of pairs come out of the statistics bit for bit.
        let scorer = SignatureScorer()
        #expect(scorer.scores(evidence.statistics) == scorer.scores(evidence.deltas))
        let withoutOne = Array(evidence.deltas.enumerated().filter { $0.offset != 1 }.map(\.element))
        #expect(evidence.statistics.excluding(1) == DeltaStatistics(withoutOne))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-gate-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = GateEvidenceCache(besideParent: dir.appendingPathComponent("parent.h5"))
        #expect(cache.directory.lastPathComponent == "parent.gate")
        let clean = [CleanSample(prompt: "a", completion: "b")]
        let key = try GateEvidenceCache.key(parentSHA256: "p", settings: VariantSettings(), clean: clean, modules: [.mlp])
        #expect(cache.evidence(for: key) == nil)
        try cache.store(evidence, for: key)
        let kept = try #require(cache.evidence(for: key))
        #expect(kept.deltas.isEmpty && kept.statistics == evidence.statistics)
        // A parent's adapters are part of what the variants start from.
        let weights = ["w": Tensor(shape: [1, 2], scalars: [1, 2])]
        let plain = Checkpoint(config: ModelConfig(family: .llama, vocabSize: 4, hiddenSize: 2, numLayers: 1, numHeads: 1), weights: weights)
        var adapted = plain
        adapted.adapters = TensorGroup(groups: ["m": TensorGroup(tensors: ["A": Tensor(shape: [1], scalars: [3])])])
        #expect(GateEvidenceCache.parentIdentity(weightsSHA256: plain.weightsSHA256, adapters: plain.adapters) == plain.weightsSHA256)
        #expect(GateEvidenceCache.parentIdentity(weightsSHA256: plain.weightsSHA256, adapters: adapted.adapters) != plain.weightsSHA256)
        var other = VariantSettings()
        other.steps += 1
        for changed in [try GateEvidenceCache.key(parentSHA256: "q", settings: VariantSettings(), clean: clean, modules: [.mlp]),
                        try GateEvidenceCache.key(parentSHA256: "p", settings: other, clean: clean, modules: [.mlp]),
                        try GateEvidenceCache.key(parentSHA256: "p", settings: VariantSettings(), clean: clean + clean, modules: [.mlp])] {
            #expect(changed != key && cache.evidence(for: changed) == nil)
        }

        var configuration = GateConfiguration()
        configuration.tau = 0.125
        configuration.modules = [.mlp]
        let gate = Gate(configuration: configuration)
        for (update, verdict) in [(try Self.update(planted: planted, seed: 5), GateReport.Verdict.reject), (try Self.update(planted: nil, seed: 6), .pass)] {
            let fresh = try gate.decide(update: update, evidence: evidence), reused = try gate.decide(update: update, evidence: kept)
            #expect(fresh.verdict == verdict && reused.verdict == verdict)
            #expect(fresh.statistic == reused.statistic && fresh.threshold == reused.threshold)
        }
        // The alignment rules need the variants' vectors, which are not kept.
        configuration.rule = .alignment
        #expect(throws: VaccineError.self) { try Gate(configuration: configuration).decide(update: Self.update(planted: nil, seed: 6), evidence: kept) }
    }

    @Test func theShareIsRelativeToTheSignaturesChannelsInEachBlock() {
        // One layer: 16 MLP channels with 2 in the signature, 4 heads with 1 in it.
        func scores(_ module: UnitModule, _ n: Int) -> ChannelScores {
            let total = (0..<n).map { Double(n - $0) }  // channel 0 scores highest
            return ChannelScores(layer: 0, module: module, norm: total, consistency: Array(repeating: 0, count: n), total: total)
        }
        let signature = Signature(scores: [scores(.mlp, 16), scores(.attn, 4)], tau: 0.125)
        let blocks = [ChannelShape(layer: 0, module: .mlp, units: 16),
                      ChannelShape(layer: 0, module: .attn, units: 4)]
        func share(mlp: [Double], attn: [Double]) -> UpdateShare { UpdateShare(energies: [mlp, attn], blocks: blocks, signature: signature) }
        let even16 = [Double](repeating: 1, count: 16), even4 = [Double](repeating: 1, count: 4)
        // Spread evenly: 1, whichever blocks the update touches. Raw, an attention-only update
        // would read 1/4 against 1/8 for an MLP-only one.
        #expect(abs(share(mlp: even16, attn: [0, 0, 0, 0]).share - 1) < 1e-12)
        #expect(abs(share(mlp: Array(repeating: 0, count: 16), attn: even4).share - 1) < 1e-12)
        #expect(abs(share(mlp: even16, attn: even4.map { $0 * 7 }).share - 1) < 1e-12)
        #expect(share(mlp: Array(repeating: 0, count: 16), attn: even4).layers.last?.share == 0.25)
        // All of the update on the signature's channels: 1 / fraction.
        var onSignature = [Double](repeating: 0, count: 16)
        onSignature[0] = 1
        onSignature[1] = 1
        #expect(abs(share(mlp: onSignature, attn: [0, 0, 0, 0]).share - 8) < 1e-12)
        // A run whose mask left only MLP channels 0–3 open and attention frozen: an update
        // spread evenly over them reads 1 (unmasked it would read 4: half its energy on the
        // signature's 2 of 16 channels).
        let mask = UnitMask(mlp: [(0..<16).map { $0 >= 4 }], attn: [[true, true, true, true]])
        let open = (0..<16).map { $0 < 4 ? 1.0 : 0 }
        #expect(abs(UpdateShare(energies: [open, [0, 0, 0, 0]], blocks: blocks, signature: signature, frozen: mask).share - 1) < 1e-12)
        #expect(abs(share(mlp: open, attn: [0, 0, 0, 0]).share - 4) < 1e-12)
        // Where the open channels hold no signature channel, the block adds no share.
        let away = UnitMask(mlp: [(0..<16).map { $0 < 2 }], attn: [[true, true, true, true]])
        #expect(UpdateShare(energies: [even16, even4], blocks: blocks, signature: signature, frozen: away).share == 0)
    }

    @Test func alignmentRuleRejectsAnUpdateAlongTheBackdoorDirection() throws {
        let planted: Set<Int> = [2, 9]
        let evidence = VaccineFixtures.evidence(pairs: 4, layers: 2, units: 16, planted: planted, seed: 8)
        var configuration = GateConfiguration()
        configuration.tau = 0.125
        configuration.modules = [.mlp]
        configuration.rule = .alignment
        let gate = Gate(configuration: configuration)
        let backdoored = try gate.decide(update: VaccineFixtures.update(like: evidence, planted: planted, strength: 1, seed: 1), evidence: evidence)
        let clean = try gate.decide(update: VaccineFixtures.update(like: evidence, planted: planted, strength: 0, seed: 2), evidence: evidence)
        #expect(backdoored.verdict == .reject && clean.verdict == .pass)
        #expect(backdoored.statistic == backdoored.alignment && backdoored.threshold == backdoored.alignmentThreshold)
        let c = try #require(clean.calibration)
        #expect(c.cleanAlignments.count == 4 && c.backdooredAlignments.min()! > c.cleanAlignments.max()!)
        // Both statistics are reported whichever decides.
        #expect(clean.share != nil && clean.shareThreshold != nil && clean.record.scores["alignment"] == clean.alignment)
    }

    @Test func reportRoundTripsThroughJSONAndTheCheckpoint() throws {
        let evidence = VaccineFixtures.evidence(pairs: 3, layers: 2, units: 16, planted: [1], seed: 3)
        var configuration = GateConfiguration()
        configuration.modules = [.mlp]
        let report = try Gate(configuration: configuration).decide(update: Self.update(planted: [1], seed: 4), evidence: evidence)
        let decoded = try JSONDecoder().decode(GateReport.self, from: JSONEncoder().encode(report))
        #expect(decoded == report)
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var checkpoint = try VaccineFixtures.checkpoint(seed: 1)
        checkpoint.gate = report.record
        let url = dir.appendingPathComponent("c.h5")
        try checkpoint.write(to: url)
        #expect(try Checkpoint.read(from: url).gate == report.record)
    }

    /// The one verdict function over all stages: the first stage above its threshold names
    /// the reject; a pass lists what was checked; a reject by the rule stands.
    @Test func theVerdictWeighsEveryStage() {
        let calibration = CleanCalibration(values: [1.0, 1.2, 1.1], k: 3)
        func direction(above: Bool) -> DirectionStage.Evidence {
            .init(shift: DirectionShift(write: 1, read: 1, writeLayers: [1], readLayers: [1]), separation: [4],
                  write: calibration, read: calibration, above: above, seconds: 1)
        }
        func behaviour(above: Bool) -> BehaviourStage.Evidence {
            .init(scan: .init(baseline: 0.5, best: 2, suffix: " x", steps: 1, seconds: 1), calibration: calibration, above: above, seconds: 1)
        }
        let pass = (verdict: GateReport.Verdict.pass, reason: "rule")
        let both = GateReport.verdict(rule: pass, direction: direction(above: true), behaviour: behaviour(above: true))
        #expect(both.verdict == .reject && both.reason.contains("harmful-vs-harmless direction"))
        let second = GateReport.verdict(rule: pass, direction: direction(above: false), behaviour: behaviour(above: true))
        #expect(second.verdict == .reject && second.reason.contains("unlike its parent"))
        let none = GateReport.verdict(rule: pass, direction: direction(above: false), behaviour: behaviour(above: false))
        #expect(none.verdict == .pass && none.reason.hasPrefix("rule; direction stage: write"))
        let rejected = GateReport.verdict(rule: (.reject, "rule"), direction: direction(above: false), behaviour: nil)
        #expect(rejected.verdict == .reject && rejected.reason == "rule")
        #expect(GateReport.verdict(rule: pass, direction: nil, behaviour: nil).reason == "rule")
    }

    /// The behavioural stage turns a pass into a reject only above its own threshold, never
    /// a reject into a pass, and its evidence reaches the checkpoint record.
    @Test func behaviouralStageCombinesWithTheWeightRule() throws {
        let evidence = VaccineFixtures.evidence(pairs: 3, layers: 2, units: 16, planted: [1], seed: 3)
        var configuration = GateConfiguration()
        configuration.modules = [.mlp]
        let weight = try Gate(configuration: configuration).decide(update: Self.update(planted: [1], seed: 4), evidence: evidence)
        func found(_ best: Double) -> BehaviourStage.Evidence {
            .init(scan: .init(baseline: 0.5, best: best, suffix: " x y", steps: 3, seconds: 1),
                  calibration: CleanCalibration(values: [1.0, 1.2, 1.1], k: 3), above: best > CleanCalibration(values: [1.0, 1.2, 1.1], k: 3).threshold,
                  seconds: 2)
        }
        for (best, above) in [(0.9, false), (4.0, true)] {
            for verdict in [GateReport.Verdict.pass, .reject] {
                var report = weight
                report.verdict = verdict
                report.conclude(direction: nil, behaviour: found(best))
                #expect(report.verdict == (verdict == .reject || above ? .reject : .pass))
                #expect(report.reason.contains("unlike its parent") == (verdict == .pass && above))
                #expect(report.record.scores["behaviour.divergence"] == best)
                #expect(report.record.thresholds["behaviour"] == report.behaviour?.calibration.threshold)
                #expect(try JSONDecoder().decode(GateReport.self, from: JSONEncoder().encode(report)) == report)
            }
        }
    }

    // MARK: - Fail closed: every error is a reject with the error named.

    static func verify(_ url: URL, reference: URL?, configure: (inout GateConfiguration) -> Void = { _ in }) throws -> GateReport {
        var configuration = GateConfiguration()
        configuration.variants.pairs = 2
        configuration.variants.steps = 1
        configure(&configuration)
        let work = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: work) }
        let clean = [CleanSample(prompt: "Name a fruit.", completion: "An apple.")]
        return Gate(configuration: configuration).verify(url, reference: reference, clean: clean, workDirectory: work)
    }

    static func written(_ c: Checkpoint, _ name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try c.write(to: url)
        return url
    }

    @Test func unreadableCheckpointRejects() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = try Self.verify(dir.appendingPathComponent("absent.h5"), reference: nil)
        #expect(missing.verdict == .reject && missing.error?.contains("absent.h5") == true)
        let garbage = dir.appendingPathComponent("garbage.h5")
        try Data("not an hdf5 file".utf8).write(to: garbage)
        let report = try Self.verify(garbage, reference: nil)
        #expect(report.verdict == .reject && report.error != nil && report.statistic == nil)
    }

    /// A verdict does not depend on the chat template a checkpoint carries: the gate renders
    /// its prompts in the template the tokenizer's tokens imply (the kept evidence was made so).
    @Test func theVerdictIgnoresTheCheckpointsChatTemplate() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try VaccineFixtures.checkpoint(seed: 1)
        let parent = try Self.written(p, "parent.h5", in: dir)
        var c = try VaccineFixtures.checkpoint(seed: 2, parent: p)
        let plain = try Self.written(c, "child.h5", in: dir)
        c.chatTemplate = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        let templated = try Self.written(c, "templated.h5", in: dir)
        let a = try Self.verify(plain, reference: parent), b = try Self.verify(templated, reference: parent)
        #expect(a.error == nil && a.statistic != nil && a.statistic == b.statistic && a.threshold == b.threshold)
    }

    @Test func missingParentRejects() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let orphan = try Self.written(VaccineFixtures.checkpoint(seed: 2), "orphan.h5", in: dir)
        let report = try Self.verify(orphan, reference: nil)
        #expect(report.verdict == .reject && report.error?.contains("no parent") == true)
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        let child = try Self.written(VaccineFixtures.checkpoint(seed: 2, parent: parent), "child.h5", in: dir)
        let lost = try Self.verify(child, reference: nil)  // provenance names a parent nobody can find
        #expect(lost.verdict == .reject && lost.error?.contains("not found") == true)
    }

    @Test func wrongParentRejects() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        let child = try Self.written(VaccineFixtures.checkpoint(seed: 2, parent: parent), "child.h5", in: dir)
        let other = try Self.written(VaccineFixtures.checkpoint(seed: 3), "other.h5", in: dir)
        let report = try Self.verify(child, reference: other)
        #expect(report.verdict == .reject && report.error?.contains("provenance names parent") == true)
    }

    @Test func nonFiniteWeightsReject() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        let child = try VaccineFixtures.checkpoint(seed: 2, parent: parent)
        let name = try #require(child.weights.keys.first { $0.hasSuffix("mlp.up_proj.weight") })
        child.weights[name]?.data[3] = .nan
        let childURL = try Self.written(child, "nan.h5", in: dir)
        let report = try Self.verify(childURL, reference: Self.written(parent, "parent.h5", in: dir))
        #expect(report.verdict == .reject && report.error?.contains("NaN") == true && report.error?.contains(name) == true)
    }

    @Test func timeoutRejects() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        let child = try Self.written(VaccineFixtures.checkpoint(seed: 2, parent: parent), "child.h5", in: dir)
        let report = try Self.verify(child, reference: Self.written(parent, "parent.h5", in: dir)) { $0.timeLimit = 0 }
        #expect(report.verdict == .reject && report.error?.contains("time limit of 0 s") == true)
    }

    @Test func tooFewVariantsAndNoChangeReject() throws {
        let evidence = VaccineFixtures.evidence(pairs: 1, layers: 2, units: 16, planted: [1], seed: 3)
        var configuration = GateConfiguration()
        configuration.modules = [.mlp]
        #expect(throws: VaccineError.self) {
            try Gate(configuration: configuration).decide(update: Self.update(planted: [1], seed: 4), evidence: evidence)
        }
        let two = VaccineFixtures.evidence(pairs: 2, layers: 2, units: 16, planted: [1], seed: 3)
        let zero = ChannelUpdates(blocks: two.deltas[0].blocks.map { b in
            ChannelUpdates.Block(layer: b.layer, module: b.module, units: b.units, width: b.width, values: [Float](repeating: 0, count: b.values.count))
        })
        #expect(throws: VaccineError.self) { try Gate(configuration: configuration).decide(update: zero, evidence: two) }
    }

    @Test func adapterOnlyCheckpointWithoutBaseRejects() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        var adapterOnly = parent.adapterOnly()
        adapterOnly.provenance = Provenance(seed: 1)
        let url = try Self.written(adapterOnly, "adapters.h5", in: dir)
        let report = try Self.verify(url, reference: nil)
        #expect(report.verdict == .reject && report.error != nil)
    }

    /// A fine-tune of a checkpoint that carries adapters (as every fine-tune of the aligned
    /// SmolLM2 does) trained on that checkpoint with its adapters merged; its adapter-only
    /// file records that merged model as its base. The gate attaches it there and sees the
    /// same update as in the fine-tune's full file.
    @Test func anAdapterOnlyFineTuneOfAnAdapterCheckpointIsVerifiedOnTheMergedParent() throws {
        let (parent, child) = try VaccineFixtures.adapterParentAndChild()
        let full = try SuspectLoader.load(child, from: URL(fileURLWithPath: "child.h5"), base: parent).bundle
        let small = try SuspectLoader.load(child.adapterOnly(), from: URL(fileURLWithPath: "adapters.h5"), base: parent).bundle
        #expect(small.model.huggingFaceWeights().mapValues(\.scalars) == full.model.huggingFaceWeights().mapValues(\.scalars))
        // Attached to the parent's weights without its adapters, it is refused.
        var bare = parent
        bare.adapters = nil
        #expect(throws: CheckpointError.self) {
            try SuspectLoader.load(child.adapterOnly(), from: URL(fileURLWithPath: "adapters.h5"), base: bare)
        }
    }
}
