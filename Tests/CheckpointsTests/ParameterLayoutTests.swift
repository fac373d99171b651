import Engine
import Foundation
import Models
import Testing
@testable import Checkpoints

@Suite struct ParameterLayoutTests {
    @Test func gpt2SmallHasItsPublishedParameterCount() {
        let config = ModelConfig(family: .gpt2, vocabSize: 50257, hiddenSize: 768, numLayers: 12, numHeads: 12, maxPositions: 1024)
        let layout = ParameterLayout(config: config)
        #expect(layout.parameterCount == 124_439_808)
        #expect(layout.parameters.count == 2 + 12 * 12 + 2)
        #expect(layout.shape(of: "transformer.h.11.attn.c_attn.weight") == [768, 2304])
        #expect(layout.shape(of: "lm_head.weight") == nil)
        #expect(layout.linearModules.count == 48)
        #expect(layout.linearModule(named: "transformer.h.0.mlp.c_proj") == .init(
            name: "transformer.h.0.mlp.c_proj", target: "c_proj", inFeatures: 3072, outFeatures: 768, fanInFanOut: true))
    }

    @Test func llama2SevenBHasItsPublishedParameterCount() {
        let config = ModelConfig(family: .llama, vocabSize: 32000, hiddenSize: 4096, numLayers: 32, numHeads: 32,
                                 intermediateSize: 11008, maxPositions: 4096, tieWordEmbeddings: false)
        #expect(ParameterLayout(config: config).parameterCount == 6_738_415_616)
    }

    @Test func groupedQueryAttentionAndQwenBiases() {
        // Qwen2-0.5B: 14 heads, 2 KV heads of 64, q/k/v bias, tied embeddings.
        let config = ModelConfig(family: .llama, vocabSize: 151_936, hiddenSize: 896, numLayers: 24, numHeads: 14, numKVHeads: 2,
                                 intermediateSize: 4864, maxPositions: 32768, tieWordEmbeddings: true, qkvBias: true, outputBias: false)
        let layout = ParameterLayout(config: config)
        #expect(layout.shape(of: "model.layers.3.self_attn.k_proj.weight") == [128, 896])
        #expect(layout.shape(of: "model.layers.3.self_attn.k_proj.bias") == [128])
        #expect(layout.shape(of: "model.layers.3.self_attn.o_proj.bias") == nil)
        #expect(layout.parameterCount == 494_032_768)
        #expect(HuggingFaceModel.modelType(config) == "qwen2")
    }

    @Test func validateNamesTheFirstProblem() {
        let layout = ParameterLayout(config: TinyConfigs.llama)
        var shapes = Dictionary(uniqueKeysWithValues: layout.parameters.map { ($0.name, $0.shape) })
        #expect(throws: Never.self) { try layout.validate(shapes: shapes, file: "f", prefix: "") }
        shapes["extra.weight"] = [1]
        #expect(throws: CheckpointError.self) { try layout.validate(shapes: shapes, file: "f", prefix: "") }
        do { try layout.validate(shapes: shapes, file: "f", prefix: "") } catch {
            #expect(error.description == "f: unexpected dataset extra.weight")
        }
    }
}
