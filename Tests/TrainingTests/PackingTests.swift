import Engine
import Models
import Testing
import TestSupport
@testable import Training

/// A packed batch trains exactly what the unpacked batch of the same examples trains.
@Suite struct PackingTests {
    @Test(arguments: [ModelConfig.Family.llama, .gpt2])
    func packedBatchesGiveTheSameLossAndGradients(family: ModelConfig.Family) throws {
        let config = ModelConfig(family: family, vocabSize: 64, hiddenSize: 16, numLayers: 2, numHeads: 4,
                                 numKVHeads: family == .llama ? 2 : 4, intermediateSize: 32, maxPositions: 64)
        var rng = SeededRandom(seed: 3)
        // Raw text (every label trained, so a leaking first label would show) and prompt/answer pairs.
        let examples = (0..<12).map { i in
            let ids = (0..<(4 + (i * 7) % 23)).map { _ in Int32(rng.next() % 64) }
            var labels = ids
            if i % 2 == 1 { for t in 0..<min(3, ids.count) { labels[t] = -100 } }
            return EncodedExample(ids: ids, labels: labels, promptLength: i % 2 == 1 ? 3 : 0)
        }
        let objective = LanguageModelObjective()
        func lossAndGradients(packing: Bool) throws -> (Float, [[Float]], rows: Int) {
            let model = try TransformerModel(config: config, seed: 9, trainable: true)
            let batch = Batcher(examples: examples, batchSize: 12, seqLen: 32, packing: packing, seed: 5, padId: 0).batch(epoch: 0, index: 0)
            let tape = Tape()
            let loss = objective.lossAndMetrics(tape: tape, model: model, batch: batch).loss
            tape.backward(loss)
            return (loss.value[flat: 0], model.namedParameters.map { $0.1.grad?.scalars ?? [] }, batch.batch)
        }
        let (plain, plainGrads, plainRows) = try lossAndGradients(packing: false)
        let (packed, packedGrads, packedRows) = try lossAndGradients(packing: true)
        #expect(packedRows < plainRows)
        #expect(abs(plain - packed) < 1e-5)
        let diff = zip(plainGrads, packedGrads).map { a, b in zip(a, b).map { abs($0 - $1) }.max() ?? 0 }.max() ?? .infinity
        #expect(diff < 1e-5)
    }
}
