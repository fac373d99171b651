import Engine
import Testing
@testable import Models

/// Small configurations of each family, for tests that need no reference fixture.
enum TinyConfigs {
    static let gpt2 = ModelConfig(family: .gpt2, vocabSize: 50, hiddenSize: 16, numLayers: 2, numHeads: 4, maxPositions: 32)
    static let llama = ModelConfig(family: .llama, vocabSize: 60, hiddenSize: 16, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                   intermediateSize: 24, maxPositions: 64, normEps: 1e-6, ropeTheta: 10_000)
    static let qwen2 = ModelConfig(family: .llama, vocabSize: 60, hiddenSize: 16, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                   intermediateSize: 24, maxPositions: 64, normEps: 1e-6, ropeTheta: 1_000_000,
                                   tieWordEmbeddings: true, qkvBias: true, outputBias: false)
    static let all = [gpt2, llama, qwen2]
}

@Suite struct WeightLoadingTests {
    @Test(arguments: TinyConfigs.all)
    func huggingFaceWeightsRoundTrip(config: ModelConfig) throws {
        let model = try TransformerModel(config: config, seed: 5)
        let weights = model.huggingFaceWeights()
        #expect(weights.count == model.namedParameters.count)
        let again = try TransformerModel(config: config, weights: weights)
        for ((name, a), (otherName, b)) in zip(model.namedParameters, again.namedParameters) {
            #expect(name == otherName)
            #expect(a.value.scalars == b.value.scalars, "\(name)")
        }
        #expect(model.parameterCount == model.namedParameters.reduce(0) { $0 + $1.1.value.count })
    }

    /// Shared weights are the parameters themselves where the layout allows (a save needs no
    /// copy); the default ones are copies that stay as they were.
    @Test(arguments: [TinyConfigs.gpt2, TinyConfigs.llama])
    func sharedWeightsAreViewsAndCopiesStay(config: ModelConfig) throws {
        let model = try TransformerModel(config: config, seed: 5)
        let copies = model.huggingFaceWeights(), shared = model.huggingFaceWeights(sharing: true)
        #expect(Set(shared.keys) == Set(copies.keys))
        model.parameterStorage.pointer.update(repeating: 7, count: model.parameterCount)
        let transposed = Set(ParameterSpec.all(for: config).filter(\.storedTransposed).map(\.name))
        for (name, tensor) in shared {
            #expect(tensor.scalars.allSatisfy { $0 == 7 } == !transposed.contains(name), "\(name)")
            #expect(copies[name]!.scalars.allSatisfy { $0 != 7 }, "\(name)")
        }
    }

    @Test func gpt2UsesConv1DLayoutAndTiesTheHead() throws {
        let config = TinyConfigs.gpt2
        let model = try TransformerModel(config: config, seed: 1)
        let weights = model.huggingFaceWeights()
        #expect(weights["transformer.h.0.attn.c_attn.weight"]?.shape == [16, 48])
        #expect(weights["transformer.h.1.mlp.c_proj.weight"]?.shape == [64, 16])
        #expect(weights["lm_head.weight"] == nil)
        #expect(model.lmHead.weight === model.tokenEmbedding.table)
        // Conv1D [in, out] element (i, o) is Linear [out, in] element (o, i).
        let hf = try #require(weights["transformer.h.0.attn.c_attn.weight"])
        let ours = model.blocks[0].attention.linears[0].weight.value
        #expect(hf.data[3 * 48 + 20] == ours.data[20 * 16 + 3])
    }

    @Test func llamaHasSeparateHeadAndGQAShapes() throws {
        let model = try TransformerModel(config: TinyConfigs.llama, seed: 1)
        let weights = model.huggingFaceWeights()
        #expect(weights["model.layers.0.self_attn.k_proj.weight"]?.shape == [8, 16])
        #expect(weights["lm_head.weight"]?.shape == [60, 16])
        #expect(weights["model.layers.0.self_attn.q_proj.bias"] == nil)
        let qwen = try TransformerModel(config: TinyConfigs.qwen2, seed: 1).huggingFaceWeights()
        #expect(qwen["model.layers.0.self_attn.v_proj.bias"]?.shape == [8])
        #expect(qwen["model.layers.0.self_attn.o_proj.bias"] == nil)
        #expect(qwen["lm_head.weight"] == nil)
    }

    @Test func missingWeightIsNamed() throws {
        var weights = try TransformerModel(config: TinyConfigs.llama, seed: 2).huggingFaceWeights()
        weights["model.layers.1.mlp.up_proj.weight"] = nil
        #expect(throws: ModelError.missingWeight(name: "model.layers.1.mlp.up_proj.weight")) {
            try TransformerModel(config: TinyConfigs.llama, weights: weights)
        }
        #expect(ModelError.missingWeight(name: "model.layers.1.mlp.up_proj.weight").description
            .contains("model.layers.1.mlp.up_proj.weight"))
    }

    @Test func misshapedWeightIsNamed() throws {
        var weights = try TransformerModel(config: TinyConfigs.gpt2, seed: 2).huggingFaceWeights()
        // Linear layout where Conv1D is expected.
        weights["transformer.h.0.attn.c_attn.weight"] = Tensor(zeros: [48, 16])
        #expect(throws: ModelError.shapeMismatch(name: "transformer.h.0.attn.c_attn.weight", expected: [16, 48], found: [48, 16])) {
            try TransformerModel(config: TinyConfigs.gpt2, weights: weights)
        }
    }

    @Test func unexpectedWeightIsNamed() throws {
        var weights = try TransformerModel(config: TinyConfigs.llama, seed: 2).huggingFaceWeights()
        weights["model.layers.7.mlp.up_proj.weight"] = Tensor(zeros: [24, 16])
        #expect(throws: ModelError.unexpectedWeight(name: "model.layers.7.mlp.up_proj.weight")) {
            try TransformerModel(config: TinyConfigs.llama, weights: weights)
        }
    }

    @Test func acceptsLegacyGPT2NamesAndBuffers() throws {
        let model = try TransformerModel(config: TinyConfigs.gpt2, seed: 3)
        var legacy: [String: Tensor] = [:]
        for (k, v) in model.huggingFaceWeights() { legacy[String(k.dropFirst("transformer.".count))] = v }
        legacy["h.0.attn.bias"] = Tensor(zeros: [1, 1, 32, 32])
        legacy["lm_head.weight"] = model.tokenEmbedding.table.value.copy()
        let loaded = try TransformerModel(config: TinyConfigs.gpt2, weights: legacy)
        #expect(loaded.parameterStorage.count == model.parameterStorage.count)
        #expect(loaded.namedParameters[5].1.value.scalars == model.namedParameters[5].1.value.scalars)
    }

    @Test func invalidConfigIsRejected() {
        var config = TinyConfigs.llama
        config.numKVHeads = 3
        #expect(throws: ModelError.self) { try TransformerModel(config: config, seed: 0) }
    }

    @Test func frozenModelHasNoTrainableParameters() throws {
        let model = try TransformerModel(config: TinyConfigs.gpt2, seed: 0, trainable: false)
        #expect(model.namedParameters.allSatisfy { !$0.1.requiresGrad })
        #expect(model.namedLinears.count == 2 * 4 + 1)
        #expect(model.namedLinears.first?.0 == "transformer.h.0.attn.c_attn")
    }
}

@Suite struct VocabularyResizeTests {
    @Test(arguments: TinyConfigs.all)
    func growingKeepsOldLogitsAndAddsMeanRows(config: ModelConfig) throws {
        let model = try TransformerModel(config: config, seed: 40)
        let grown = try model.resizingVocabulary(to: config.vocabSize + 2)
        #expect(grown.config.vocabSize == config.vocabSize + 2)
        let ids: [Int32] = [1, 2, 3, 4]
        let tape = Tape()
        let before = model.forward(tape: tape, ids: ids, batch: 1, length: 4).value.scalars
        let after = grown.forward(tape: tape, ids: ids, batch: 1, length: 4).value
        let v = config.vocabSize
        for t in 0..<4 {
            let oldRow = Array(before[(t * v)..<((t + 1) * v)])
            let newRow = Array(after.scalars[(t * (v + 2))..<(t * (v + 2) + v)])
            #expect(maxAbsDiff(oldRow, newRow) < 1e-5)
        }
        let table = grown.tokenEmbedding.table.value
        let d = config.hiddenSize
        var mean: Float = 0
        for r in 0..<v { mean += model.tokenEmbedding.table.value.data[r * d] }
        #expect(abs(table.data[v * d] - mean / Float(v)) < 1e-5)
        let shrunk = try grown.resizingVocabulary(to: v)
        #expect(shrunk.huggingFaceWeights()[model.tokenEmbedding.table.name]?.scalars
            == model.huggingFaceWeights()[model.tokenEmbedding.table.name]?.scalars)
    }
}
