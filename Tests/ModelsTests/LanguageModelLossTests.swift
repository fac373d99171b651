import Engine
import Foundation
import Models
import Testing

/// The LM loss computes the head only on rows with a target; it must equal the loss on
/// the full logits, with the same gradients.
@Suite("Language-model loss on target rows only")
struct LanguageModelLossTests {
    @Test(arguments: [TinyConfigs.llama, TinyConfigs.gpt2])
    func equalsTheFullLogitsLoss(config: ModelConfig) throws {
        let batch = 2, length = 8
        var rng = SeededRandom(seed: 5)
        let ids = (0..<(batch * length)).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        // Prompt tokens and padding carry no label.
        var labels = ids
        for i in [0, 1, 2, 8, 9, 14, 15] { labels[i] = -100 }
        let targets = TransformerModel.shiftedTargets(labels, batch: batch, length: length)

        func lossAndGradients(full: Bool) throws -> (Float, [String: Tensor]) {
            let model = try TransformerModel(config: config, seed: 9, trainable: true)
            let tape = Tape()
            let hidden = model.hiddenStates(tape: tape, ids: ids, batch: batch, length: length)
            let loss = full ? tape.crossEntropy(logits: model.logits(tape: tape, hidden: hidden), targets: targets)
                : model.languageModelLoss(tape: tape, hidden: hidden, targets: targets)
            tape.backward(loss)
            return (loss.value[flat: 0], model.huggingFaceGradients())
        }
        let (full, fullGrads) = try lossAndGradients(full: true)
        let (rows, rowGrads) = try lossAndGradients(full: false)
        #expect(abs(full - rows) <= 1e-6 * max(1, abs(full)))
        #expect(Set(fullGrads.keys) == Set(rowGrads.keys))
        for (name, g) in fullGrads {
            let h = try #require(rowGrads[name])
            var worst: Float = 0
            for i in 0..<g.count { worst = max(worst, abs(g.data[i] - h.data[i])) }
            #expect(worst <= 1e-6, "\(name): gradients differ by \(worst)")
        }
    }
}
