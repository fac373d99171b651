import Checkpoints
import Engine
import Foundation
import Models

/// The seed inputs of each target: files under `<corpus>/<target>/`, plus the generated
/// seeds that `write(to:)` puts there (tiny safetensors and checkpoint files).
public enum SeedCorpus {
    /// Every regular file in `<corpus>/<target>/`, sorted by name.
    public static func load(_ target: FuzzTarget, from corpus: URL) throws -> [[UInt8]] {
        let dir = corpus.appendingPathComponent(target.rawValue)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }.sorted()
        return try names.map { [UInt8](try Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    /// Copies the seeds of `target` that other inputs may refer to (recipes' `extends`) into `scratch`.
    public static func prepare(_ target: FuzzTarget, corpus: URL, scratch: URL) throws {
        guard target == .recipe else { return }
        let dir = corpus.appendingPathComponent(target.rawValue)
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where !name.hasPrefix(".") {
            let to = scratch.appendingPathComponent(name)
            try? FileManager.default.removeItem(at: to)
            try FileManager.default.copyItem(at: dir.appendingPathComponent(name), to: to)
        }
    }

    /// A tiny GPT-2 checkpoint that uses every section the reader knows.
    public static func tinyCheckpoint(adapterOnly: Bool = false) -> Checkpoint {
        let config = ModelConfig(family: .gpt2, vocabSize: 12, hiddenSize: 4, numLayers: 1, numHeads: 2,
                                 intermediateSize: 8, maxPositions: 8, bosTokenId: 0, eosTokenId: 1)
        let layout = ParameterLayout(config: config)
        var rng = SeededRandom(seed: 7)
        var weights: [String: Tensor] = [:]
        for p in layout.parameters {
            let t = Tensor(zeros: p.shape)
            rng.fillNormal(t, std: 0.5)
            weights[p.name] = t
        }
        var adapters = TensorGroup(attributes: ["kind": .string("lora")])
        for m in layout.linearModules where m.target == "c_attn" {
            adapters.groups[m.name] = TensorGroup(
                tensors: ["A": Tensor(repeating: 0.25, shape: [2, m.inFeatures]), "B": Tensor(repeating: 0.5, shape: [m.outFeatures, 2])],
                attributes: ["rank": .int(2), "alpha": .double(4), "target": .string(m.target)])
        }
        let units = UnitMaps(layers: [0: ["mlp": UnitMapEntry(classes: [0, 1, 2, 3, 0, 1, 2, 3], scores: Tensor(repeating: 0.5, shape: [8, 2]))]],
                             attributes: ["threshold": .double(0.5)])
        let tokenizer = Data(#"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"added_tokens":[{"id":3,"content":"<s>","special":true}]}"#.utf8)
        let checkpoint = Checkpoint(
            config: config, weights: weights, tokenizerJSON: tokenizer, adapters: adapters, units: units,
            signal: TensorGroup(tensors: ["w": Tensor(repeating: 0.1, shape: [4])], attributes: ["layer": .int(0)]),
            optimizer: TensorGroup(tensors: ["step": Tensor(repeating: 3, shape: [1])], attributes: ["step": .int(3)]),
            provenance: Provenance(recipe: "r.yaml", recipeSHA256: String(repeating: "a", count: 64),
                                   dataSHA256: ["d.jsonl": String(repeating: "b", count: 64)], seed: 1),
            gate: GateRecord(verdict: "pass", scores: ["asr": 0.1], thresholds: ["asr": 0.2], date: "2025-01-01"),
            created: "2025-01-01T00:00:00Z")
        return adapterOnly ? checkpoint.adapterOnly() : checkpoint
    }

    /// Small safetensors images: F32, F16 and BF16 tensors, metadata, and an empty file.
    public static func tinySafetensors() -> [String: Data] {
        func image(_ entries: [(String, String, [Int], [UInt8])], metadata: [String: String]? = nil) -> Data {
            var header: [String: Any] = [:]
            var body: [UInt8] = []
            for (name, dtype, shape, bytes) in entries {
                header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [body.count, body.count + bytes.count]]
                body += bytes
            }
            if let metadata { header["__metadata__"] = metadata }
            var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8)
            while json.count % 8 != 0 { json.append(0x20) }
            var out = Data()
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
            return out + json + Data(body)
        }
        let f32 = (0..<6).flatMap { i in withUnsafeBytes(of: Float(i) - 2.5) { Array($0) } }
        let f16 = (0..<4).flatMap { i in withUnsafeBytes(of: Float16(Float(i) * 0.5).bitPattern.littleEndian) { Array($0) } }
        let bf16 = (0..<4).flatMap { i in withUnsafeBytes(of: UInt16((Float(i) + 1).bitPattern >> 16).littleEndian) { Array($0) } }
        return [
            "f32.safetensors": image([("w", "F32", [2, 3], f32)], metadata: ["format": "pt"]),
            "mixed.safetensors": image([("a", "F16", [4], f16), ("b", "BF16", [2, 2], bf16), ("c", "F32", [], Array(f32.prefix(4))),
                                        ("i", "I64", [1], [1, 0, 0, 0, 0, 0, 0, 0]), ("z", "F32", [0, 3], [])]),
            "empty.safetensors": image([]),
        ]
    }

    /// Writes the generated seeds (checkpoints, safetensors) into `<corpus>/<target>/`.
    public static func write(to corpus: URL) throws {
        let ckpt = corpus.appendingPathComponent(FuzzTarget.checkpoint.rawValue)
        try FileManager.default.createDirectory(at: ckpt, withIntermediateDirectories: true)
        try tinyCheckpoint().write(to: ckpt.appendingPathComponent("tiny-gpt2.h5"))
        try tinyCheckpoint(adapterOnly: true).write(to: ckpt.appendingPathComponent("tiny-adapters.h5"))
        let st = corpus.appendingPathComponent(FuzzTarget.safetensors.rawValue)
        try FileManager.default.createDirectory(at: st, withIntermediateDirectories: true)
        for (name, data) in tinySafetensors() { try data.write(to: st.appendingPathComponent(name)) }
    }
}
