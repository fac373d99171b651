import Engine
import Testing
@testable import Models

/// Adds x · Mᵀ to a projection: a dense stand-in for LoRA's B·A.
final class DenseDeltaAdapter: LinearAdapter {
    let delta: Variable
    init(delta: Tensor) { self.delta = Variable(delta, requiresGrad: true, name: "delta") }
    func forward(tape: Tape, x: Variable) -> Variable { tape.linear(x, delta) }
    var namedParameters: [(String, Variable)] { [("delta", delta)] }
}

@Suite struct ModelForwardTests {
    /// A forward that records nothing hands a dead block's buffers to the next block
    /// (`Tape.recycle`), so it allocates less than a recording one, and computes the same.
    @Test(arguments: TinyConfigs.all)
    func anInferenceForwardReusesDeadBlocksBuffers(config: ModelConfig) throws {
        let model = try TransformerModel(config: config, seed: 11)
        let ids = (0..<(2 * 12)).map { Int32($0 % config.vocabSize) }
        func forward(recording: Bool) -> (hidden: [Float], floats: Int) {
            let tape = Tape()
            let hidden = recording ? model.hiddenStates(tape: tape, ids: ids, batch: 2, length: 12).value.scalars
                : tape.withoutGrad { model.hiddenStates(tape: tape, ids: ids, batch: 2, length: 12).value.scalars }
            tape.reset()
            return (hidden, tape.pooledElementCount)
        }
        let recorded = forward(recording: true), inferred = forward(recording: false)
        #expect(inferred.hidden == recorded.hidden)
        #expect(inferred.floats < recorded.floats * 3 / 4, "\(inferred.floats) floats against \(recorded.floats)")
    }

    @Test(arguments: TinyConfigs.all)
    func adapterOutputIsAddedToTheProjection(config: ModelConfig) throws {
        let ids: [Int32] = [1, 5, 7, 2, 9, 4]
        let model = try TransformerModel(config: config, seed: 11, trainable: false)
        let merged = try TransformerModel(config: config, seed: 11)
        let (path, linear) = model.namedLinears[1]
        let target = try #require(merged.namedLinears.first { $0.0 == path }?.1)
        var rng = SeededRandom(seed: 2)
        let delta = Tensor(zeros: linear.weight.shape)
        rng.fillNormal(delta, std: 0.1)
        linear.adapter = DenseDeltaAdapter(delta: delta)
        for i in 0..<delta.count { target.weight.value.data[i] += delta.data[i] }

        let tape = Tape()
        let a = model.forward(tape: tape, ids: ids, batch: 2, length: 3).value.scalars
        let b = merged.forward(tape: tape, ids: ids, batch: 2, length: 3).value.scalars
        #expect(maxAbsDiff(a, b) < 1e-4)
        linear.adapter = nil
        let c = model.forward(tape: tape, ids: ids, batch: 2, length: 3).value.scalars
        #expect(maxAbsDiff(a, c) > 1e-4)

        // Only the adapter trains when the base is frozen.
        let loss = model.loss(tape: tape, ids: ids, batch: 2, length: 3)
        linear.adapter = DenseDeltaAdapter(delta: delta)
        let tape2 = Tape()
        let adapted = model.loss(tape: tape2, ids: ids, batch: 2, length: 3)
        tape2.backward(adapted)
        #expect(!loss.requiresGrad)
        let adapter = try #require(linear.adapter as? DenseDeltaAdapter)
        #expect(adapter.delta.grad != nil)
        #expect(model.namedParameters.allSatisfy { $0.1.grad == nil })
    }

    @Test(arguments: TinyConfigs.all)
    func lossIsShiftedCrossEntropyOfTheLogits(config: ModelConfig) throws {
        let model = try TransformerModel(config: config, seed: 12)
        let ids: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        var labels = ids
        labels[0] = -100
        labels[1] = -100   // prompt of row 0 masked
        labels[5] = -100
        let tape = Tape()
        let logits = model.forward(tape: tape, ids: ids, batch: 2, length: 4).value
        let loss = model.loss(tape: tape, ids: ids, labels: labels, batch: 2, length: 4).value.scalars[0]
        let v = config.vocabSize
        var total: Float = 0
        var n = 0
        for b in 0..<2 {
            for t in 0..<3 {
                let label = labels[b * 4 + t + 1]
                if label == -100 { continue }
                let row = Array(logits.scalars[((b * 4 + t) * v)..<((b * 4 + t + 1) * v)])
                total -= Generator.logSoftmax(row, at: Int(label))
                n += 1
            }
        }
        #expect(n == 4)
        #expect(abs(loss - total / Float(n)) < 1e-5)
    }

    @Test(arguments: TinyConfigs.all)
    func tokenLogprobsAverageToTheLoss(config: ModelConfig) throws {
        let model = try TransformerModel(config: config, seed: 15)
        let ids = [4, 8, 15, 16, 23, 42]
        let scores = try model.tokenLogprobs(ids)
        #expect(scores.count == ids.count - 1)
        #expect(scores.allSatisfy { $0 < 0 })
        let loss = model.loss(tape: Tape(), ids: ids.map { Int32($0) }, batch: 1, length: ids.count).value.scalars[0]
        #expect(abs(-scores.reduce(0, +) / Float(scores.count) - loss) < 1e-5)
        #expect(throws: ModelError.tokenOutOfRange(id: 1000, vocabSize: config.vocabSize)) { try model.tokenLogprobs([1, 1000]) }
        #expect(try model.tokenLogprobs([3]).isEmpty)
    }

    @Test func hiddenStatesFeedTheHead() throws {
        let model = try TransformerModel(config: TinyConfigs.llama, seed: 13)
        let tape = Tape()
        let ids: [Int32] = [1, 2, 3, 4, 5, 6]
        let hidden = model.hiddenStates(tape: tape, ids: ids, batch: 2, length: 3)
        #expect(hidden.shape == [2, 3, 16])
        let logits = model.forward(tape: tape, ids: ids, batch: 2, length: 3)
        #expect(logits.shape == [2, 3, 60])
        let row4 = model.logits(tape: tape, hidden: hidden, rows: [4]).value.scalars
        #expect(maxAbsDiff(row4, Array(logits.value.scalars[(4 * 60)..<(5 * 60)])) < 1e-5)
    }

    @Test func explicitCausalMaskAndPositionsMatchDefaults() throws {
        let model = try TransformerModel(config: TinyConfigs.qwen2, seed: 14)
        let tape = Tape()
        let ids: [Int32] = [7, 8, 9, 10, 11, 12]
        let plain = model.forward(tape: tape, ids: ids, batch: 2, length: 3).value.scalars
        let masked = model.forward(tape: tape, ids: ids, batch: 2, length: 3,
                                   mask: .causal(batch: 2, queries: 3, keys: 3), positions: [0, 1, 2, 0, 1, 2]).value.scalars
        #expect(maxAbsDiff(plain, masked) < 1e-6)
        let shifted = model.forward(tape: tape, ids: ids, batch: 2, length: 3, positions: [5, 6, 7, 5, 6, 7]).value.scalars
        // Rotary attention depends only on relative positions.
        #expect(maxAbsDiff(plain, shifted) < 1e-4)
    }
}
