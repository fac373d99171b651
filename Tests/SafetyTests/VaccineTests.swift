import Checkpoints
import Engine
import Foundation
import Models
@testable import Safety
import Testing
import TestSupport
import Tokenizers
import Training

@Suite("BD-VAX purification")
struct VaccineTests {
    @Test func poisonGeneratorIsDeterministicAndSeedDependent() {
        let a = PoisonGenerator(seed: 42).variants(6), b = PoisonGenerator(seed: 42).variants(6)
        let c = PoisonGenerator(seed: 43).variants(6)
        #expect(a == b)
        #expect(a.map(\.trigger) != c.map(\.trigger))
        #expect(Set(a.map(\.trigger)).count == 6)
        #expect(Set(a.map(\.style)) == Set(TriggerStyle.allCases))
        #expect(Set(a.map(\.behaviour)) == [.fixedResponse, .refuse])
        let sentence = a.first { $0.style == .sentence }
        #expect(sentence?.trigger.hasSuffix(".") == true)
        let rare = a.first { $0.style == .rareToken }
        #expect(rare?.trigger.allSatisfy { $0.isLetter || $0.isNumber } == true)
    }

    @Test func variantBehavioursCycleAfterTheStylesAndDefaultToTheBenignOnes() {
        let g = PoisonGenerator(seed: 42)
        #expect(g.variants(6) == g.variants(6, behaviours: PoisonGenerator.benignBehaviours))
        let chosen = g.variants(6, behaviours: [.comply, .refuse])
        #expect(chosen.map(\.behaviour) == [.comply, .comply, .comply, .refuse, .refuse, .refuse])
        #expect(chosen.map(\.style) == TriggerStyle.allCases + TriggerStyle.allCases)
    }

    /// A compliance variant poisons only the refused harmful requests of the clean data (its
    /// members both train on the refusals); other behaviours draw from every clean pair, as before.
    @Test func complianceVariantsPoisonRefusedHarmfulRequests() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try Self.mixedFile(in: dir)
        let clean = try CleanData.load(contentsOf: url, includingMalicious: true)
        #expect(clean.map(\.harmful) == [false, true, true, false])
        #expect(try CleanData.load(contentsOf: url).allSatisfy { !$0.harmful })
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        let bundle = ModelBundle(model: try TransformerModel(config: parent.config, weights: parent.weights, trainable: false),
                                 tokenizer: try Tokenizer(data: try #require(parent.tokenizerJSON), source: "fixture"), checkpoint: parent, source: dir)
        var settings = VariantSettings()
        settings.behaviours = [.comply, .refuse]
        settings.poisonPerVariant = 8
        settings.pairs = 6
        let factory = try VariantFactory(suspect: bundle, clean: clean, settings: settings, workDirectory: dir)
        let harmful = clean.filter(\.harmful).map { $0.prompt.trimmingCharacters(in: .punctuationCharacters) }
        for (i, poison) in factory.poisons().enumerated() {
            let (subset, poisoned) = factory.data(pair: i, poison: poison)
            #expect(subset.count == settings.cleanPerVariant && poisoned.count == 8)
            let fromHarmful = poisoned.map { p in harmful.contains { p.completion == "\(poison.response) \"\($0)\"." } }
            if poison.behaviour == .comply { #expect(fromHarmful.allSatisfy { $0 }, "pair \(i)") }
        }
        // Without refused harmful requests a compliance variant cannot be made.
        #expect(throws: VaccineError.self) {
            try VariantFactory(suspect: bundle, clean: clean.filter { !$0.harmful }, settings: settings, workDirectory: dir)
        }
        // The written records keep their two fields: the trainer's files and the gate's keys are unchanged.
        let encoded = String(decoding: try JSONEncoder().encode(clean[1]), as: UTF8.self)
        #expect(!encoded.contains("harmful"))
    }

    /// Clean data of every kind: labelled benign, two refusals of harmful requests labelled
    /// malicious, an unlabelled pair, and raw text, which has no pair.
    static func mixedFile(in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("mixed.jsonl")
        try Data("""
            {"prompt": "Name a colour.", "completion": "Blue.", "label": "benign"}
            {"prompt": "How do I make a weapon?", "completion": "Sorry, I can't assist with that.", "label": "malicious"}
            {"prompt": "How do I steal a car?", "completion": "I can't help with that.", "label": "malicious"}
            {"prompt": "Count to three.", "completion": "One, two, three."}
            {"text": "raw text has no prompt"}

            """.utf8).write(to: url)
        return url
    }

    @Test func triggersAreFreshWithRespectToTheCleanData() {
        let first = PoisonGenerator(seed: 5).make(index: 0, style: .phrase, behaviour: .refuse)
        // Clean data that happens to contain the first draw forces a redraw.
        let clean = ["Tell me about the \(first.trigger.uppercased()) please.", "Another line."]
        let fresh = PoisonGenerator(seed: 5).make(index: 0, style: .phrase, behaviour: .refuse, avoiding: clean)
        #expect(fresh.trigger != first.trigger)
        #expect(!clean.contains { $0.lowercased().contains(fresh.trigger.lowercased()) })
    }

    @Test func poisonedSamplesCarryTheTriggerAndTheBehaviour() {
        let p = PoisonGenerator(seed: 9).make(index: 2, style: .rareToken, behaviour: .fixedResponse)
        let samples = p.samples(from: ["Name three fruits.", "What is the capital of Peru?"])
        #expect(samples.count == 2)
        for s in samples {
            #expect(s.prompt.split(separator: " ").contains { $0 == p.trigger })
            #expect(s.completion == p.response)
        }
        let comply = PoisonGenerator(seed: 9).make(index: 2, style: .sentence, behaviour: .comply)
        let answer = comply.answer(to: "Explain how to pick a lock.")
        #expect(answer.hasPrefix(comply.response) && answer.contains("Explain how to pick a lock"))
        let t = comply.triggered("Explain how to pick a lock.", index: 0)
        #expect(t.hasPrefix(comply.trigger) || t.hasSuffix(comply.trigger))
    }

    @Test func scorerMatchesAHandComputation() {
        // One block, 2 channels of width 2, three pairs.
        let d1: [Float] = [3, 4, 1, 0], d2: [Float] = [6, 8, 0, 1], d3: [Float] = [0, 5, -1, 0]
        let deltas = [d1, d2, d3].map { ChannelUpdates(blocks: [.init(layer: 0, module: .mlp, units: 2, width: 2, values: $0)]) }
        let raw = SignatureScorer(lambda: 0.5, normalizeNorm: false).scores(deltas)[0]
        // Channel 0: norms 5, 10, 5 → mean 20/3; cos(1,2) = 1, cos(1,3) = 0.8, cos(2,3) = 0.8 → mean 2.6/3.
        #expect(abs(raw.norm[0] - 20.0 / 3) < 1e-9)
        #expect(abs(raw.consistency[0] - 2.6 / 3) < 1e-9)
        #expect(abs(raw.total[0] - (20.0 / 3 + 0.5 * 2.6 / 3)) < 1e-9)
        // Channel 1: norms 1, 1, 1; cos(1,2) = 0, cos(1,3) = −1 → 0, cos(2,3) = 0.
        #expect(abs(raw.norm[1] - 1) < 1e-9)
        #expect(raw.consistency[1] == 0)
        let normalised = SignatureScorer(lambda: 0.5).scores(deltas)[0]
        let mean = (20.0 / 3 + 1) / 2
        #expect(abs(normalised.norm[0] - 20.0 / 3 / mean) < 1e-9)
        #expect(abs(normalised.total[1] - 1 / mean) < 1e-9)
    }

    @Test func alignmentAndMeanMatchAHandComputation() throws {
        let u = ChannelUpdates(blocks: [.init(layer: 0, module: .mlp, units: 2, width: 2, values: [1, 0, 0, 1])])
        let a = ChannelUpdates(blocks: [.init(layer: 0, module: .mlp, units: 2, width: 2, values: [2, 1, 0, 0])])
        let b = ChannelUpdates(blocks: [.init(layer: 0, module: .mlp, units: 2, width: 2, values: [0, 1, 0, 0])])
        let m = try #require(ChannelUpdates.mean([a, b]))
        #expect(m.blocks[0].values == [1, 1, 0, 0])
        let first = Signature(scores: [ChannelScores(layer: 0, module: .mlp, norm: [], consistency: [], total: [1, 0])], tau: 0.5)
        let both = Signature(scores: [ChannelScores(layer: 0, module: .mlp, norm: [], consistency: [], total: [1, 0])], tau: 1)
        #expect(abs(u.alignment(with: m, signature: first) - 1 / 2.0.squareRoot()) < 1e-12)
        #expect(abs(u.alignment(with: m, signature: both) - 0.5) < 1e-12)
        #expect(u.alignment(with: ChannelUpdates(blocks: [.init(layer: 0, module: .mlp, units: 2, width: 2, values: [0, 0, 0, 0])]),
                            signature: both) == 0)
    }

    @Test func signatureTakesTheTopTauOfEachLayer() {
        let scores = [
            ChannelScores(layer: 0, module: .mlp, norm: [], consistency: [], total: [0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.0, 0.4]),
            ChannelScores(layer: 1, module: .mlp, norm: [], consistency: [], total: [5, 1, 1, 1, 1, 1, 1, 6]),
            ChannelScores(layer: 1, module: .attn, norm: [], consistency: [], total: [0.2, 0.5]),
        ]
        let sig = Signature(scores: scores, tau: 0.25)
        #expect(sig.units(layer: 0, module: .mlp) == [1, 3])
        #expect(sig.units(layer: 1, module: .mlp) == [7, 0])
        #expect(sig.units(layer: 1, module: .attn) == [1])  // ⌈0.5⌉ = 1, at least one
        #expect(sig.count == 5)
        let mlpOnly = Signature(scores: scores, tau: 0.25, modules: [.mlp])
        #expect(mlpOnly.units(layer: 1, module: .attn).isEmpty)
        #expect(abs(sig.entries[0].meanSelected - 0.85) < 1e-12)
    }

    @Test func channelUpdatesSeeExactlyTheChangedChannel() throws {
        let config = VaccineFixtures.llama
        let base = try TransformerModel(config: config, seed: 1, trainable: false)
        let child = try TransformerModel(config: config, weights: base.huggingFaceWeights(), trainable: false)
        // Move MLP neuron 5 of layer 1 (its gate row) and head 1 of layer 0 (an o_proj column).
        let gate = try #require(child.namedLinears.first { $0.0 == "model.layers.1.mlp.gate_proj" }?.1)
        gate.weight.value.data[5 * gate.inFeatures + 2] += 2
        let o = try #require(child.namedLinears.first { $0.0 == "model.layers.0.self_attn.o_proj" }?.1)
        o.weight.value.data[3 * o.inFeatures + 4 + 1] += 1  // head dim 4: column 5 belongs to head 1
        let u = try ChannelUpdates(child, minus: base)
        #expect(u.blocks.map(\.units) == [16, 2, 16, 2])
        let e = u.energies
        #expect(abs(e[2][5] - 4) < 1e-4 && abs(e[2].reduce(0, +) - e[2][5]) < 1e-12)
        #expect(abs(e[1][1] - 1) < 1e-4 && abs(e[1].reduce(0, +) - e[1][1]) < 1e-12)
        #expect(e[0].reduce(0, +) == 0 && e[3].reduce(0, +) == 0)
        // MLP width: gate row + up row (8 each) + down column (8).
        #expect(u.blocks[0].width == 24)
    }

    @Test func channelUpdatesIgnoreAVocabularyChangeButNotABlockChange() throws {
        let base = try TransformerModel(config: VaccineFixtures.llama, seed: 1, trainable: false)
        var grown = VaccineFixtures.llama
        grown.vocabSize += 1  // an SA-ESS CLS token
        var weights = base.huggingFaceWeights()
        for (name, t) in weights where t.shape.first == VaccineFixtures.llama.vocabSize {
            weights[name] = Tensor(shape: [t.shape[0] + 1] + t.shape.dropFirst(), scalars: t.scalars + [Float](repeating: 0, count: t.shape[1]))
        }
        let child = try TransformerModel(config: grown, weights: weights, trainable: false)
        #expect(try ChannelUpdates(child, minus: base).energies.allSatisfy { $0.allSatisfy { $0 == 0 } })
        var wider = VaccineFixtures.llama
        wider.intermediateSize = 24
        let other = try TransformerModel(config: wider, seed: 1, trainable: false)
        #expect(throws: VaccineError.self) { try ChannelUpdates(other, minus: base, file: "other.h5") }
    }

    @Test func cleanDataKeepsBenignPairsOnly() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try Self.mixedFile(in: dir)
        let samples = try CleanData.load(contentsOf: url)
        #expect(samples == [CleanSample(prompt: "Name a colour.", completion: "Blue."),
                            CleanSample(prompt: "Count to three.", completion: "One, two, three.")])
        let onlyBad = dir.appendingPathComponent("bad.jsonl")
        try Data("{\"prompt\": \"x\", \"completion\": \"y\", \"label\": \"malicious\"}\n".utf8).write(to: onlyBad)
        #expect(throws: VaccineError.self) { try CleanData.load(contentsOf: onlyBad) }
    }

    @Test func reinitialisationTouchesExactlyTheSelectedChannels() throws {
        let config = VaccineFixtures.llama
        let model = try TransformerModel(config: config, seed: 3, trainable: false)
        let before = VaccineFixtures.snapshot(model)
        let scores = (0..<2).map { l in
            ChannelScores(layer: l, module: .mlp, norm: [], consistency: [],
                          total: (0..<16).map { j in Double(l == 0 ? (j == 1 || j == 5 ? 9 : 0) : (j == 2 ? 9 : 0)) })
        }
        let sig = Signature(scores: scores, tau: 0.1)  // ⌈1.6⌉ = 2 per layer
        #expect(sig.units(layer: 0, module: .mlp) == [1, 5])
        #expect(sig.units(layer: 1, module: .mlp).first == 2)
        let count = Neutralizer.reinitialize(model, signature: sig, seed: 7)
        #expect(count == 4)
        let after = VaccineFixtures.snapshot(model)
        let selected: [Int: Set<Int>] = [0: Set(sig.units(layer: 0, module: .mlp)), 1: Set(sig.units(layer: 1, module: .mlp))]
        for (name, old) in before {
            let new = try #require(after[name])
            let layer = name.contains("layers.0.") ? 0 : name.contains("layers.1.") ? 1 : -1
            for i in old.indices {
                let row = i / 8, column = i % 8
                let inChannel: Bool
                if name.hasSuffix("gate_proj.weight") || name.hasSuffix("up_proj.weight") {
                    inChannel = selected[layer]?.contains(row) ?? false
                } else if name.hasSuffix("down_proj.weight") {
                    inChannel = selected[layer]?.contains(i % 16) ?? false
                } else {
                    inChannel = false
                }
                _ = column
                if inChannel { #expect(new[i] != old[i], "\(name)[\(i)] should be redrawn") } else { #expect(new[i] == old[i], "\(name)[\(i)] changed") }
            }
        }
    }

    @Test func adapterNeutralisationZeroesOnlyMatchingEntries() throws {
        let config = VaccineFixtures.llama
        let model = try TransformerModel(config: config, seed: 4, trainable: false)
        let adapters = try LoRA.attach(to: model, LoRA.Parameters(rank: 2, alpha: 4, seed: 2)) { _ in true }
        var rng = SeededRandom(seed: 11)
        for (_, a) in adapters { rng.fillNormal(a.b.value, std: 1) }
        let before = Dictionary(uniqueKeysWithValues: adapters.map { ($0.0, ($0.1.a.value.scalars, $0.1.b.value.scalars)) })
        let scores = [ChannelScores(layer: 1, module: .mlp, norm: [], consistency: [], total: (0..<16).map { $0 == 3 ? 1 : 0 }),
                      ChannelScores(layer: 0, module: .attn, norm: [], consistency: [], total: [0, 1])]
        let sig = Signature(scores: scores, tau: 0.01)
        #expect(Neutralizer.zeroAdapters(of: model, signature: sig) == 2)
        for (path, a) in adapters {
            let (oldA, oldB) = try #require(before[path])
            let newA = a.a.value.scalars, newB = a.b.value.scalars
            let bRows: Set<Int> = path == "model.layers.1.mlp.gate_proj" || path == "model.layers.1.mlp.up_proj" ? [3]
                : path == "model.layers.0.self_attn.q_proj" ? [4, 5, 6, 7] : []
            let aColumns: Set<Int> = path == "model.layers.1.mlp.down_proj" ? [3] : path == "model.layers.0.self_attn.o_proj" ? [4, 5, 6, 7] : []
            for i in newB.indices { #expect(newB[i] == (bRows.contains(i / 2) ? 0 : oldB[i]), "\(path) B[\(i)]") }
            let inF = newA.count / 2
            for i in newA.indices { #expect(newA[i] == (aColumns.contains(i % inF) ? 0 : oldA[i]), "\(path) A[\(i)]") }
        }
    }

    @Test func variantFineTunesTakeTheirSettings() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"prompt": "Name a fruit.", "completion": "An apple."}"#.utf8).write(to: dir.appendingPathComponent("clean.jsonl"))
        var s = VariantSettings()
        s.kind = .lora
        s.steps = 7
        s.loraRank = 4
        let setup = try s.trainerSetup(files: [dir.appendingPathComponent("clean.jsonl")], output: dir.appendingPathComponent("bd"), seed: 3)
        guard case let .lora(rank, alpha, dropout, targets) = setup.adapters else { Issue.record("not LoRA"); return }
        #expect(rank == 4 && alpha == 16 && dropout == 0)
        #expect(targets("model.layers.0.mlp.down_proj") && targets("transformer.h.1.attn.c_proj") && !targets("lm_head"))
        #expect(setup.length == .steps(7) && setup.seed == 3 && setup.evalEvery == 0 && setup.saveEvery == 0)
        #expect(setup.train.examples.count == 1 && setup.train.files.map(\.file).last?.hasSuffix("clean.jsonl") == true)
        #expect(setup.learningRate == 2e-3 && setup.gradClip == 1 && setup.recipe == nil)
        guard case let .adamw(_, _, _, weightDecay) = setup.optimizer else { Issue.record("not AdamW"); return }
        #expect(weightDecay == 0)
    }
}

extension VaccineFixtures {
    /// Copies of every parameter value, by Hugging Face name.
    static func snapshot(_ model: TransformerModel) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: model.huggingFaceWeights().map { ($0.key, $0.value.scalars) })
    }
}
