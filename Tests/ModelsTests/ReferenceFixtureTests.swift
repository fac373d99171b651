import Checkpoints
import Engine
import Testing
@testable import Models

/// SafeTune against PyTorch + transformers on the committed fixtures. Tolerances: logits
/// 1e-4 max abs; loss 1e-4 relative; every gradient 1e-4 norm-relative
/// (max|a − b| / max(max|b|, 1e-6)); greedy generations token-identical.
@Suite struct ReferenceFixtureTests {
    static let names = ["gpt2", "llama", "qwen2", "llama_fp16"]

    @Test(arguments: names)
    func logitsMatchTransformers(name: String) throws {
        let f = try ReferenceFixture(name)
        let model = try TransformerModel(config: f.config, weights: f.weights)
        let tape = Tape()
        let logits = model.forward(tape: tape, ids: f.ids, batch: f.batch, length: f.length)
        let expected = try #require(f.tensors["logits"])
        #expect(logits.shape == expected.shape)
        let err = maxAbsDiff(logits.value, expected)
        print("[\(name)] logits max abs error \(err)")
        #expect(err < 1e-4)
        let hidden = model.hiddenStates(tape: tape, ids: f.ids, batch: f.batch, length: f.length)
        let row0 = hidden.value.reshaped([f.batch * f.length, f.config.hiddenSize]).slice(0..<f.length)
        #expect(maxAbsDiff(row0, try #require(f.tensors["hidden.final_norm"])) < 1e-4)
    }

    @Test(arguments: names)
    func lossAndEveryGradientMatchTransformers(name: String) throws {
        let f = try ReferenceFixture(name)
        let model = try TransformerModel(config: f.config, weights: f.weights)
        let tape = Tape()
        let loss = model.loss(tape: tape, ids: f.ids, labels: f.labels, batch: f.batch, length: f.length)
        let value = loss.value.scalars[0]
        let lossErr = abs(value - f.expected.loss) / abs(f.expected.loss)
        #expect(lossErr < 1e-4)
        tape.backward(loss)
        let grads = model.huggingFaceGradients()
        #expect(Set(grads.keys) == Set(f.expected.gradient_names))
        var worst: (String, Float) = ("", 0)
        for gradName in f.expected.gradient_names {
            let mine = try #require(grads[gradName], "\(gradName)")
            let reference = try #require(f.tensors["grad." + gradName], "\(gradName)")
            #expect(mine.shape == reference.shape, "\(gradName)")
            let err = normRelativeError(mine, reference)
            #expect(err < 1e-4, "\(gradName): norm-relative error \(err)")
            if err > worst.1 { worst = (gradName, err) }
        }
        print("[\(name)] loss \(value) vs \(f.expected.loss), relative error \(lossErr); worst gradient \(worst.0) norm-relative error \(worst.1)")
    }

    @Test(arguments: names)
    func importedFolderGivesTheSameLogits(name: String) throws {
        let f = try ReferenceFixture(name)
        let checkpoint = try HuggingFaceModel.importModel(from: try ReferenceFixture.folder(name))
        let model = try TransformerModel(config: checkpoint.config, weights: checkpoint.weights)
        let logits = model.forward(tape: Tape(), ids: f.ids, batch: f.batch, length: f.length).value
        #expect(maxAbsDiff(logits, try #require(f.tensors["logits"])) < 1e-4)
        // Exporting gives back exactly the tensors that were imported.
        let exported = model.huggingFaceWeights()
        #expect(Set(exported.keys) == Set(checkpoint.weights.keys))
        for (key, tensor) in checkpoint.weights { #expect(exported[key]?.scalars == tensor.scalars, "\(key)") }
    }

    @Test(arguments: names)
    func greedyGenerationIsTokenIdentical(name: String) throws {
        let f = try ReferenceFixture(name)
        let model = try TransformerModel(config: f.config, weights: f.weights)
        let generator = Generator(model: model)
        let g = f.expected.generation
        for useCache in [true, false] {
            let result = try generator.generate(prompt: g.prompt_ids, options: GenerationOptions(
                maxTokens: g.max_new_tokens, stopAtEndOfSequence: false, useCache: useCache))
            #expect(g.prompt_ids + result.tokens == g.output_ids, "cache: \(useCache)")
        }
    }
}
