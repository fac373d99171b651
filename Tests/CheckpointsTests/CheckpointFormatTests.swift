import Engine
import Foundation
import Models
import Testing
@testable import Checkpoints

/// A checkpoint with every optional section filled.
func fullCheckpoint(_ config: ModelConfig = TinyConfigs.llama) -> Checkpoint {
    let layout = ParameterLayout(config: config)
    let q = layout.linearModules[0]
    let adapters = TensorGroup(attributes: ["kind": .string("lora")], groups: [
        q.name: TensorGroup(tensors: ["A": Tensor(repeating: 0.25, shape: [4, q.inFeatures]), "B": Tensor(repeating: -0.5, shape: [q.outFeatures, 4])],
                            attributes: ["rank": .int(4), "alpha": .double(8), "target": .string(q.target)]),
    ])
    let units = UnitMaps(layers: [
        0: ["mlp": UnitMapEntry(classes: [0, 1, 2, 3, 3], scores: Tensor(shape: [5, 2], scalars: (0..<10).map { Float($0) / 10 }))],
        1: ["attn": UnitMapEntry(classes: [3, 0], scores: Tensor(shape: [2], scalars: [0.9, 0.1]))],
    ], attributes: ["method": .string("ssah")])
    return Checkpoint(
        config: config, weights: randomWeights(config), tokenizerJSON: Data(#"{"model":{"type":"BPE"}}"#.utf8),
        adapters: adapters, units: units,
        signal: TensorGroup(tensors: ["head.weight": Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])], attributes: ["layer": .int(1)]),
        optimizer: TensorGroup(attributes: ["step": .int(17), "kind": .string("adamw")], groups: [
            "m": TensorGroup(tensors: ["x": Tensor(shape: [2], scalars: [0.1, 0.2])]),
            "v": TensorGroup(tensors: ["x": Tensor(shape: [2], scalars: [0.01, 0.02])]),
        ]),
        provenance: Provenance(recipe: "model: tiny\nlr: 1e-4\n", recipeSHA256: String(repeating: "a", count: 64),
                               dataSHA256: ["train.jsonl": String(repeating: "b", count: 64), "safety set.jsonl": String(repeating: "c", count: 64)],
                               parentSHA256: String(repeating: "d", count: 64), seed: 1234, steps: 125),
        gate: GateRecord(verdict: "pass", scores: ["asr": 0.02, "utility": 0.91], thresholds: ["asr": 0.1], date: "2026-01-02T03:04:05Z"),
        created: "2026-01-01T00:00:00Z")
}

@Suite struct CheckpointFormatTests {
    @Test(arguments: [TinyConfigs.gpt2, TinyConfigs.llama])
    func everySectionRoundTrips(config: ModelConfig) throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.h5")
        let c = fullCheckpoint(config)
        try c.write(to: url)
        let r = try Checkpoint.read(from: url)
        #expect(r.config == config)
        #expect(sameWeights(r.weights, c.weights))
        #expect(r.tokenizerJSON == c.tokenizerJSON)
        #expect(r.created == "2026-01-01T00:00:00Z" && r.safetuneVersion == SafeTuneVersion.current)
        let q = ParameterLayout(config: config).linearModules[0].name
        #expect(r.adapters?.attributes == ["kind": .string("lora")])
        #expect(r.adapters?.groups[q]?.attributes == c.adapters?.groups[q]?.attributes)
        #expect(sameWeights(r.adapters?.groups[q]?.tensors ?? [:], c.adapters!.groups[q]!.tensors))
        #expect(r.units?.layers[0]?["mlp"]?.classes == [0, 1, 2, 3, 3])
        #expect(r.units?.layers[0]?["mlp"]?.scores.scalars == c.units!.layers[0]!["mlp"]!.scores.scalars)
        #expect(r.units?.layers[1]?["attn"]?.classes == [3, 0])
        #expect(r.units?.classCounts == [2, 1, 1, 3])
        #expect(r.units?.attributes == ["method": .string("ssah")])
        #expect(r.signal?.tensors["head.weight"]?.scalars == [1, 2, 3, 4, 5, 6])
        #expect(r.optimizer?.attributes["step"] == .int(17))
        #expect(r.optimizer?.groups["v"]?.tensors["x"]?.scalars == [0.01, 0.02])
        #expect(r.provenance == c.provenance)
        #expect(r.gate == c.gate)
        #expect(r.baseSHA256 == nil)
    }

    @Test func adapterOnlyCheckpointNamesItsBase() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = fullCheckpoint()
        let url = dir.appendingPathComponent("adapter.h5")
        try full.adapterOnly().write(to: url)
        let adapter = try Checkpoint.read(from: url)
        #expect(adapter.weights.isEmpty)
        #expect(adapter.baseSHA256 == full.weightsSHA256)
        let base = Checkpoint(config: full.config, weights: full.weights)
        let merged = try adapter.attaching(to: base, source: url.path)
        #expect(sameWeights(merged.weights, full.weights) && merged.adapters != nil)

        let other = Checkpoint(config: full.config, weights: randomWeights(full.config, seed: 99))
        #expect(throws: CheckpointError.self) { try adapter.attaching(to: other, source: url.path) }
        do {
            _ = try adapter.attaching(to: other, source: url.path)
        } catch {
            guard case .wrongBase(url.path, full.weightsSHA256, other.weightsSHA256) = error else {
                Issue.record("expected wrongBase, got \(error)"); return
            }
        }
    }

    /// A run that grew the vocabulary (the SA-ESS `[CLS]` token) keeps the new rows in its
    /// adapter-only file and names the base as it was before the growth.
    @Test(arguments: [TinyConfigs.gpt2, TinyConfigs.llama])
    func adapterOnlyCheckpointKeepsTheRowsItAdded(config: ModelConfig) throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = Checkpoint(config: config, weights: randomWeights(config))
        var grownConfig = config
        grownConfig.vocabSize += 2
        var grown = fullCheckpoint(config)
        grown.config = grownConfig
        grown.weights = base.weights
        let tables = ParameterLayout(config: config).vocabularyTables
        let d = config.hiddenSize
        for name in tables {
            let old = base.weights[name]!
            grown.weights[name] = Tensor(shape: [grownConfig.vocabSize, d], scalars: old.scalars + (0..<(2 * d)).map { Float($0) })
        }
        let url = dir.appendingPathComponent("adapter.h5")
        try grown.adapterOnly(baseVocabularySize: config.vocabSize).write(to: url)
        let adapter = try Checkpoint.read(from: url)
        #expect(adapter.baseSHA256 == base.weightsSHA256)
        #expect(adapter.addedRows?.tensors.keys.sorted() == tables.sorted())
        #expect(adapter.addedRows?.tensors[tables[0]]?.shape == [2, d])
        let merged = try adapter.attaching(to: base, source: url.path)
        #expect(merged.config == grownConfig && merged.addedRows == nil && merged.baseSHA256 == nil)
        #expect(sameWeights(merged.weights, grown.weights))

        // Rows of the wrong width are refused, not appended.
        var broken = adapter
        broken.addedRows = TensorGroup(tensors: Dictionary(uniqueKeysWithValues: tables.map { ($0, Tensor(zeros: [2, d + 1])) }))
        #expect(throws: CheckpointError.self) { try broken.attaching(to: base, source: url.path) }
    }

    @Test func canonicalDigestDependsOnNamesShapesAndValues() {
        let a = ["w": Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])]
        #expect(TensorDigest.canonical(a) == TensorDigest.canonical(["w": a["w"]!.copy()]))
        #expect(TensorDigest.canonical(a) != TensorDigest.canonical(["w": a["w"]!.reshaped([4])]))
        #expect(TensorDigest.canonical(a) != TensorDigest.canonical(["v": a["w"]!]))
        #expect(TensorDigest.canonical(a) != TensorDigest.canonical(["w": Tensor(shape: [2, 2], scalars: [1, 2, 3, 5])]))
        // SHA-256 of the empty string: a known answer.
        #expect(TensorDigest.sha256(bytes: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func writerRefusesWeightsThatDisagreeWithTheConfig() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var weights = randomWeights(TinyConfigs.gpt2)
        weights["transformer.ln_f.bias"] = nil
        let url = dir.appendingPathComponent("bad.h5")
        #expect(throws: CheckpointError.self) { try Checkpoint(config: TinyConfigs.gpt2, weights: weights).write(to: url) }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "the temporary file is removed")
    }
}
