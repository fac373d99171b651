import Checkpoints
import Engine
import Foundation
import Models
import TestSupport
import Testing

struct ModelBundleTests {
    /// A loaded bundle keeps one copy of the weights, the model's, and the digest of the
    /// weights as stored: before its adapters were merged, as a fine-tune's parent names them.
    @Test func holdsTheModelsWeightsOnlyAndTheStoredDigest() throws {
        let folder = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var stored = try VaccineFixtures.checkpoint(seed: 4)
        let model = try TransformerModel(config: stored.config, weights: stored.weights, trainable: false)
        let adapters = try LoRA.attach(to: model, .init(rank: 2, alpha: 4, seed: 1)) { $0.hasSuffix("q_proj") }
        for (_, adapter) in adapters { adapter.b.value.data.update(repeating: 0.5, count: adapter.b.value.count) }
        stored.adapters = LoRAGroup.make(adapters)
        let url = folder.appendingPathComponent("adapted.h5")
        try stored.write(to: url)

        let bundle = try ModelBundle.load(url)
        #expect(bundle.checkpoint.weights.isEmpty)
        #expect(bundle.checkpoint.adapters != nil && bundle.checkpoint.config == stored.config)
        #expect(bundle.weightsSHA256 == stored.weightsSHA256)
        // The adapters are merged into the model, so its weights differ from the stored ones.
        #expect(TensorDigest.canonical(bundle.model.huggingFaceWeights()) != stored.weightsSHA256)
        let other = try TransformerModel(config: stored.config, seed: 9, trainable: false)
        let replaced = bundle.replacing(model: other, tokenizer: bundle.tokenizer)
        #expect(replaced.weightsSHA256 == stored.weightsSHA256 && replaced.model === other && replaced.source == url)
        // A fresh model's bundle names no parent.
        let fresh = ModelBundle(model: other, tokenizer: nil, checkpoint: Checkpoint(config: stored.config, weights: [:]), source: url)
        #expect(fresh.weightsSHA256 == nil)
    }
}

extension ModelBundleTests {
    /// Without adapters the digest is taken from the model when first asked, and equals the
    /// stored weights' digest for either layout (GPT-2 stores some weights transposed).
    @Test(arguments: [ModelConfig.Family.llama, .gpt2])
    func theLazyDigestIsTheStoredOne(family: ModelConfig.Family) throws {
        let folder = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = ModelConfig(family: family, vocabSize: 40, hiddenSize: 16, numLayers: 2, numHeads: 4, intermediateSize: 24,
                                 maxPositions: 32)
        let stored = Checkpoint(config: config, weights: try TransformerModel(config: config, seed: 3).huggingFaceWeights())
        let url = folder.appendingPathComponent("plain.h5")
        try stored.write(to: url)
        #expect(try ModelBundle.load(url).weightsSHA256 == stored.weightsSHA256)
    }
}
