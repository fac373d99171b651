import Engine
import Models
import Testing
@testable import Safety

@Suite("SSAH unit pruning")
struct UnitPrunerTests {
    @Test("Pruning zeroes exactly the class's rows and columns and changes the logits", arguments: ["gpt2", "llama"])
    func prunesExactly(family: String) throws {
        let config = family == "gpt2" ? UnitFixtures.gpt2 : UnitFixtures.llama
        let model = try TransformerModel(config: config, seed: 2, trainable: false)
        let map = try UnitFixtures.map(for: config, seed: 6)
        let (pruned, units) = try UnitPruner.pruned([.scu], of: map, from: model)
        #expect(units[.mlp] == map.classCounts(.mlp)[.scu])
        #expect(units[.attn] == map.classCounts(.attn)[.scu])

        // Expected zeros, computed from the map directly.
        var zero: [String: Set<Int>] = [:]
        let d = config.headDim
        for l in 0..<config.numLayers {
            let p = family == "gpt2" ? "transformer.h.\(l)." : "model.layers.\(l)."
            let fin = config.intermediateSize, width = config.hiddenSize
            for j in map.mlp[l].units(of: .scu) {
                let ups = family == "gpt2" ? ["mlp.c_fc"] : ["mlp.gate_proj", "mlp.up_proj"]
                for up in ups {
                    for c in 0..<width { zero[p + up + ".weight", default: []].insert(j * width + c) }
                    if config.mlpBias { zero[p + up + ".bias", default: []].insert(j) }
                }
                let down = p + (family == "gpt2" ? "mlp.c_proj" : "mlp.down_proj") + ".weight"
                for r in 0..<width { zero[down, default: []].insert(r * fin + j) }
            }
            for h in map.attn[l].units(of: .scu) {
                let o = p + (family == "gpt2" ? "attn.c_proj" : "self_attn.o_proj") + ".weight"
                for r in 0..<config.hiddenSize { for c in (h * d)..<((h + 1) * d) { zero[o, default: []].insert(r * config.hiddenSize + c) } }
            }
        }
        #expect(!zero.isEmpty)
        let original = UnitFixtures.snapshot(model), after = UnitFixtures.snapshot(pruned)
        for (name, values) in after {
            let expected = zero[name] ?? []
            for (i, v) in values.enumerated() {
                if expected.contains(i) { #expect(v == 0, "\(name)[\(i)] not pruned") } else { #expect(v == original[name]![i], "\(name)[\(i)] changed") }
            }
        }

        let ids: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        let tape = Tape()
        let a = tape.withoutGrad { model.forward(tape: tape, ids: ids, batch: 1, length: 8).value.scalars }
        let b = tape.withoutGrad { pruned.forward(tape: tape, ids: ids, batch: 1, length: 8).value.scalars }
        #expect(zip(a, b).contains { abs($0 - $1) > 1e-6 })
    }

    @Test("A pruned MLP neuron is silent: its activation feeding down is exactly zero")
    func silentNeuron() throws {
        let model = try TransformerModel(config: UnitFixtures.gpt2, seed: 4, trainable: false)
        let map = try UnitFixtures.map(for: UnitFixtures.gpt2, seed: 9)
        try UnitPruner.prune([.ru], of: map, in: model)
        let ru = map.mlp[0].units(of: .ru)
        #expect(!ru.isEmpty)
        var maxAbs: Float = 0
        model.blocks[0].mlp.down.inputObserver = { x in
            for r in 0..<x.rows { for j in ru { maxAbs = max(maxAbs, abs(x.data[r * x.lastDim + j])) } }
        }
        let tape = Tape()
        _ = tape.withoutGrad { model.hiddenStates(tape: tape, ids: [1, 2, 3, 4], batch: 1, length: 4) }
        #expect(maxAbs == 0)
    }

    @Test("Validation evaluates the model, then a pruned copy per class, leaving the model intact")
    func validation() throws {
        let model = try TransformerModel(config: UnitFixtures.gpt2, seed: 6, trainable: false)
        let map = try UnitFixtures.map(for: UnitFixtures.gpt2, seed: 3)
        let before = UnitFixtures.snapshot(model)
        // A measurable stand-in for ASR and utility: the first two logits of a fixed prompt.
        func outcome(_ m: TransformerModel) -> UnitValidation.Outcome {
            let tape = Tape()
            let logits = tape.withoutGrad { m.forward(tape: tape, ids: [5, 6, 7], batch: 1, length: 3).value.scalars }
            return UnitValidation.Outcome(asr: Double(logits[0]), utility: Double(logits[1]))
        }
        let v = try UnitValidation(model: model, map: map, classes: [.scu, .ru], evaluate: outcome)
        #expect(UnitFixtures.snapshot(model) == before)
        #expect(v.baseline == outcome(model))
        #expect(v.rows.map(\.pruned) == [.scu, .ru])
        for row in v.rows {
            let copy = try TransformerModel(config: UnitFixtures.gpt2, seed: 6, trainable: false)
            try UnitPruner.prune([row.pruned], of: map, in: copy)
            #expect(row.outcome == outcome(copy))
            #expect(row.mlpUnits == map.classCounts(.mlp)[row.pruned])
            #expect(v.asrChange(row) == row.outcome.asr - v.baseline.asr)
        }
        #expect(v.table.split(separator: "\n").count == 4)
    }
}
