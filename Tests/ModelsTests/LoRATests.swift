import Engine
import Testing
@testable import Models

@Suite struct LoRATests {
    static let config = ModelConfig(family: .llama, vocabSize: 40, hiddenSize: 16, numLayers: 2, numHeads: 4,
                                    numKVHeads: 2, intermediateSize: 24, maxPositions: 32)
    static let ids: [Int32] = [1, 5, 9, 3, 7, 2, 11, 4, 8, 6, 0, 12]

    static func logits(_ model: TransformerModel) -> [Float] {
        let tape = Tape()
        return tape.withoutGrad { model.forward(tape: tape, ids: ids, batch: 2, length: 6).value.scalars }
    }

    /// Trains the adapters a few AdamW steps (with weight decay) on a next-token loss.
    static func train(_ model: TransformerModel, _ adapters: [(String, LoRAAdapter)], steps: Int = 4) {
        let params = adapters.flatMap { $0.1.namedParameters.map(\.1) }
        let optimizer = AdamW(parameters: params, learningRate: 0.05, weightDecay: 0.1)
        for _ in 0..<steps {
            let tape = Tape()
            let loss = model.loss(tape: tape, ids: ids, batch: 2, length: 6)
            tape.backward(loss)
            optimizer.step()
            optimizer.zeroGrad()
        }
    }

    @Test func freshAdaptersLeaveTheModelUnchanged() throws {
        let model = try TransformerModel(config: Self.config, seed: 3, trainable: false)
        let before = Self.logits(model)
        let adapters = try LoRA.attach(to: model, .init(rank: 4, alpha: 8, seed: 1)) { $0.hasSuffix("q_proj") || $0.hasSuffix("down_proj") }
        #expect(adapters.count == 4)
        #expect(Self.logits(model) == before)
    }

    @Test func onlyAdaptersLearnAndMergeMatches() throws {
        let model = try TransformerModel(config: Self.config, seed: 3, trainable: false)
        let base = model.huggingFaceWeights()
        let adapters = try LoRA.attach(to: model, .init(rank: 4, alpha: 8, seed: 1)) { _ in true }
        Self.train(model, adapters)
        // The frozen base has no gradient buffers and did not move.
        #expect(model.namedParameters.allSatisfy { $0.1.grad == nil })
        #expect(model.huggingFaceWeights().allSatisfy { base[$0.key]!.scalars == $0.value.scalars })
        let adapted = Self.logits(model)
        #expect(adapted != Self.logits(try TransformerModel(config: Self.config, weights: base)))
        LoRA.merge(model)
        #expect(LoRA.adapters(of: model).isEmpty)
        let merged = Self.logits(model)
        #expect(zip(adapted, merged).allSatisfy { abs($0 - $1) < 1e-4 })
        LoRA.unmerge(model, adapters: adapters)
        let restored = model.huggingFaceWeights()
        for (name, t) in base {
            #expect(zip(t.scalars, restored[name]!.scalars).allSatisfy { abs($0 - $1) < 1e-5 }, "\(name)")
        }
    }

    @Test func frozenUnitsStayBitIdenticalThroughTraining() throws {
        let model = try TransformerModel(config: Self.config, seed: 3, trainable: false)
        let before = model.huggingFaceWeights()
        let adapters = try LoRA.attach(to: model, .init(rank: 4, alpha: 8, seed: 2)) { $0.contains("mlp") }
        let frozenRows = [0, 5, 17], frozenColumns = [2, 3, 23]
        for (path, adapter) in adapters {
            if path.hasSuffix("down_proj") { adapter.freezeInputs(frozenColumns) } else { adapter.freezeOutputs(frozenRows) }
        }
        Self.train(model, adapters, steps: 6)
        LoRA.merge(model)
        let after = model.huggingFaceWeights()
        for (path, _) in adapters {
            let name = path + ".weight"
            let w0 = before[name]!, w1 = after[name]!
            let cols = w0.shape[1]
            var frozenSame = true, othersChanged = false
            for r in 0..<w0.shape[0] {
                for c in 0..<cols {
                    let frozen = path.hasSuffix("down_proj") ? frozenColumns.contains(c) : frozenRows.contains(r)
                    let same = w0.data[r * cols + c].bitPattern == w1.data[r * cols + c].bitPattern
                    if frozen { frozenSame = frozenSame && same } else if !same { othersChanged = true }
                }
            }
            #expect(frozenSame, "\(name): a frozen unit changed")
            #expect(othersChanged, "\(name): nothing trained")
        }
    }

    @Test func rejectsEmptySelectionAndBadRank() throws {
        let model = try TransformerModel(config: Self.config, seed: 3, trainable: false)
        #expect(throws: LoRA.Failure.noMatchingModules) { try LoRA.attach(to: model, .init()) { _ in false } }
        #expect(throws: LoRA.Failure.invalidRank(0)) { try LoRA.attach(to: model, .init(rank: 0)) { _ in true } }
    }
}

/// LoRA training over a packed base (`packFrozenProjections`).
@Suite struct PackedBaseTests {
    /// 1.6 MB of parameters: a mapped arena, so the float32 weights really leave memory.
    static let config = ModelConfig(family: .llama, vocabSize: 64, hiddenSize: 64, numLayers: 3, numHeads: 4,
                                    numKVHeads: 2, intermediateSize: 512, maxPositions: 32)

    static func logits(_ model: TransformerModel) -> [Float] {
        let tape = Tape()
        return tape.withoutGrad { model.forward(tape: tape, ids: LoRATests.ids, batch: 2, length: 6).value.scalars }
    }

    @Test(arguments: PackedMatrix.Format.allCases)
    func aPackedBaseComputesItsPackedValuesAndUnpacksExactly(format: PackedMatrix.Format) throws {
        let model = try TransformerModel(config: Self.config, seed: 3, trainable: false)
        let adapters = try LoRA.attach(to: model, .init(rank: 4, alpha: 8, seed: 1)) { _ in true }
        LoRATests.train(model, adapters, steps: 2)
        let before = Self.logits(model)

        let moved = model.packFrozenProjections(format)
        #expect(moved > 0)
        let packed = model.namedLinears.filter { $0.1.weight.packed != nil }
        #expect(packed.count == 3 * 7 && !packed.contains { $0.0 == "lm_head" })
        #expect(model.packedBytes == packed.reduce(0) { $0 + $1.1.weight.packed!.bytes })

        // The same model holding the packed values as float32 computes the same logits, and
        // the adapters train on it.
        let reference = try TransformerModel(config: Self.config, weights: model.huggingFaceWeights(), trainable: false)
        let referenceLinears = Dictionary(uniqueKeysWithValues: reference.namedLinears)
        for (path, linear) in model.namedLinears {
            if let p = linear.weight.packed { referenceLinears[path]!.weight.value.assign(p.unpacked()) }
            if let adapter = linear.adapter as? LoRAAdapter {
                referenceLinears[path]!.adapter = LoRAAdapter(a: adapter.a.value.copy(), b: adapter.b.value.copy(), alpha: adapter.alpha)
            }
        }
        #expect(Self.logits(model) == Self.logits(reference))
        LoRATests.train(model, adapters, steps: 1)

        // Unpacked, the base is its own float32 weights again, bit for bit.
        model.unpackProjections()
        #expect(model.packedBytes == 0)
        #expect(Self.logits(model) != before)
        let original = Dictionary(uniqueKeysWithValues: try TransformerModel(config: Self.config, seed: 3, trainable: false).namedLinears)
        for (path, linear) in model.namedLinears {
            #expect(linear.weight.value.scalars == original[path]!.weight.value.scalars)
        }
    }
}
