import Engine
import Foundation
import Models
import Testing
@testable import Checkpoints

@Suite struct HuggingFaceTests {
    @Test(arguments: [TinyConfigs.gpt2, TinyConfigs.llama, ModelConfig(
        family: .llama, vocabSize: 40, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 24, maxPositions: 32,
        tieWordEmbeddings: true, qkvBias: true, outputBias: false)])
    func exportThenImportIsLossless(config: ModelConfig) throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = Checkpoint(config: config, weights: randomWeights(config), tokenizerJSON: Data(#"{"version":"1.0"}"#.utf8))
        try HuggingFaceModel.export(c, to: dir)
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        #expect(files == ["config.json", "model.safetensors", "tokenizer.json"])
        let back = try HuggingFaceModel.importModel(from: dir)
        #expect(back.config == config)
        #expect(sameWeights(back.weights, c.weights))
        #expect(back.tokenizerJSON == c.tokenizerJSON)
    }

    @Test func importAcceptsOldGPT2NamesBuffersAndTiedHead() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = TinyConfigs.gpt2
        let weights = randomWeights(config)
        var old: [String: Tensor] = [:]
        for (k, v) in weights { old[String(k.dropFirst("transformer.".count))] = v }
        old["h.0.attn.bias"] = Tensor(zeros: [1, 1, 32, 32])
        old["h.0.attn.masked_bias"] = Tensor(zeros: [])
        old["lm_head.weight"] = weights["transformer.wte.weight"]!
        try SafetensorsWriter.write(old, to: dir.appendingPathComponent("model.safetensors"))
        try JSONSerialization.data(withJSONObject: HuggingFaceModel.configJSON(config)).write(to: dir.appendingPathComponent("config.json"))
        let c = try HuggingFaceModel.importModel(from: dir)
        #expect(sameWeights(c.weights, weights))
        #expect(c.tokenizerJSON == nil)
    }

    @Test func importRejectsWrongShapesAndMissingTensorsByName() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = TinyConfigs.llama
        try JSONSerialization.data(withJSONObject: HuggingFaceModel.configJSON(config)).write(to: dir.appendingPathComponent("config.json"))
        var weights = randomWeights(config)
        weights["model.layers.1.mlp.down_proj.weight"] = Tensor(zeros: [40, 16])
        try SafetensorsWriter.write(weights, to: dir.appendingPathComponent("model.safetensors"))
        let file = dir.appendingPathComponent("model.safetensors").path
        #expect(throws: CheckpointError.self) { try HuggingFaceModel.importModel(from: dir) }
        do { _ = try HuggingFaceModel.importModel(from: dir) } catch {
            guard case .shapeMismatch(file, "model.layers.1.mlp.down_proj.weight", [16, 40], [40, 16]) = error else {
                Issue.record("got \(error)"); return
            }
        }
        weights["model.layers.1.mlp.down_proj.weight"] = nil
        try SafetensorsWriter.write(weights, to: dir.appendingPathComponent("model.safetensors"))
        do { _ = try HuggingFaceModel.importModel(from: dir); Issue.record("accepted a missing tensor") } catch {
            guard case .missingDataset(file, "model.layers.1.mlp.down_proj.weight") = error else { Issue.record("got \(error)"); return }
        }
    }

    @Test func configJSONReadsBackAsTheSameConfig() throws {
        for config in [TinyConfigs.gpt2, TinyConfigs.llama] {
            let json = HuggingFaceModel.configJSON(config)
            #expect(try ModelConfig.huggingFace(json: json, file: "config.json") == config)
        }
    }

    @Test func peftExportUsesPEFTNamesAndShapes() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = TinyConfigs.gpt2
        let layout = ParameterLayout(config: config)
        var adapters = TensorGroup()
        for m in layout.linearModules where m.target == "c_attn" {
            adapters.groups[m.name] = TensorGroup(
                tensors: ["A": Tensor(repeating: 0.1, shape: [4, m.inFeatures]), "B": Tensor(repeating: 0.2, shape: [m.outFeatures, 4])],
                attributes: ["rank": .int(4), "alpha": .double(8), "target": .string(m.target)])
        }
        try PEFTExport.export(adapters: adapters, config: config, baseModel: "tiny-gpt2", to: dir)
        let st = try SafetensorsFile(contentsOf: dir.appendingPathComponent("adapter_model.safetensors"))
        #expect(st.names == [
            "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
            "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight",
        ])
        #expect(st.entries["base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"]?.shape == [48, 4])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        #expect(json["r"] as? Int == 4 && json["lora_alpha"] as? Double == 8)
        #expect(json["target_modules"] as? [String] == ["c_attn"] && json["fan_in_fan_out"] as? Bool == true)

        // A B matrix of the wrong shape is refused with the module named.
        adapters.groups["transformer.h.0.attn.c_attn"]!.tensors["B"] = Tensor(zeros: [16, 4])
        do { try PEFTExport.export(adapters: adapters, config: config, to: dir); Issue.record("accepted a bad shape") } catch {
            guard case .shapeMismatch(_, "/adapters/transformer.h.0.attn.c_attn/B", [48, 4], [16, 4]) = error else { Issue.record("got \(error)"); return }
        }
    }
}
