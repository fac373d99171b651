import Engine
import Models
import Testing
import Training
@testable import Safety

@Suite("SSAH unit masks")
struct UnitMaskTests {
    @Test("freeze and route settings select the documented classes")
    func settings() throws {
        let map = try UnitFixtures.map(for: UnitFixtures.gpt2, seed: 3)
        func classes(_ m: UnitMask) -> Set<UnitClass> {
            var out: Set<UnitClass> = []
            for l in 0..<map.layerCount { for j in m.units(layer: l, module: .mlp) { out.insert(map.mlp[l].classes[j]) } }
            return out
        }
        #expect(UnitMask(map: map, freeze: .none, route: .all).isEmpty)
        #expect(classes(UnitMask(map: map, freeze: .scu, route: .all)) == [.scu])
        #expect(classes(UnitMask(map: map, freeze: .scuPlusCU, route: .all)) == [.scu, .cu])
        #expect(classes(UnitMask(map: map, freeze: .none, route: .ru)) == [.scu, .cu, .ucu])
        #expect(classes(UnitMask(map: map, freeze: .none, route: .ruPlusCU)) == [.scu, .ucu])
        #expect(UnitMask(map: map, freeze: .none, route: .ru).count(.mlp) == map.unitCount(.mlp) - map.classCounts(.mlp)[.ru]!)

        let top = UnitMask(map: map, freeze: .scuPlusTopCU(0.5), route: .all)
        let cuTop = map.topComplexUnits(.mlp, fraction: 0.5)
        #expect(top.count(.mlp) == map.classCounts(.mlp)[.scu]! + cuTop.count)
        #expect(cuTop.allSatisfy { top.mlp[$0.layer][$0.unit] })
        #expect(cuTop.count > 0 && cuTop.count < map.classCounts(.mlp)[.cu]!)
    }

    @Test("Grouped-query attention: a kv head is frozen only when all its query heads are")
    func gqaRule() throws {
        let model = try TransformerModel(config: UnitFixtures.llama, seed: 1)   // 4 heads, 2 kv heads, D = 4
        let block = model.blocks[0]
        let partial = UnitSlices(block: block, module: .attn, units: [0, 2])
        #expect(partial.outputRows.count == 1)
        #expect(partial.outputRows[0].rows == [0, 1, 2, 3, 8, 9, 10, 11])
        #expect(partial.inputColumns[0].columns == [0, 1, 2, 3, 8, 9, 10, 11])
        let full = UnitSlices(block: block, module: .attn, units: [2, 3])
        #expect(full.outputRows.map(\.linear.path) == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                                                       "model.layers.0.self_attn.v_proj"])
        #expect(full.outputRows[1].rows == [4, 5, 6, 7])
        #expect(full.outputRows[2].rows == [4, 5, 6, 7])

        // GPT-2 fused c_attn: q, k and v blocks of the head.
        let gpt2 = try TransformerModel(config: UnitFixtures.gpt2, seed: 1)
        let fused = UnitSlices(block: gpt2.blocks[1], module: .attn, units: [1])
        #expect(fused.outputRows[0].rows == [4, 5, 6, 7, 20, 21, 22, 23, 36, 37, 38, 39])
        let mlp = UnitSlices(block: gpt2.blocks[1], module: .mlp, units: [3])
        #expect(mlp.outputRows.map(\.linear.path) == ["transformer.h.1.mlp.c_fc"])
        #expect(mlp.inputColumns.map(\.linear.path) == ["transformer.h.1.mlp.c_proj"])
    }

    /// Trains `model` a few AdamW steps (weight decay on) on a fixed batch.
    private func train(_ model: TransformerModel, parameters: [Variable], steps: Int = 4) {
        let opt = AdamW(parameters: parameters, learningRate: 0.05, weightDecay: 0.1)
        let ids: [Int32] = [1, 7, 3, 9, 4, 2, 8, 6, 5, 11, 13, 12]
        let tape = Tape()
        for _ in 0..<steps {
            opt.zeroGrad()
            let loss = model.loss(tape: tape, ids: ids, batch: 2, length: 6)
            tape.backward(loss)
            opt.step()
            tape.reset()
        }
    }

    /// (linear, frozen rows, frozen columns) for every projection touched by `mask`.
    private func frozenSlices(_ model: TransformerModel, _ mask: UnitMask) -> [(Linear, Set<Int>, Set<Int>)] {
        var out: [String: (Linear, Set<Int>, Set<Int>)] = [:]
        for (l, block) in model.blocks.enumerated() {
            for m in UnitModule.allCases {
                let s = UnitSlices(block: block, module: m, units: mask.units(layer: l, module: m))
                for (lin, rows) in s.outputRows { out[lin.path, default: (lin, [], [])].1.formUnion(rows) }
                for (lin, cols) in s.inputColumns { out[lin.path, default: (lin, [], [])].2.formUnion(cols) }
            }
        }
        return Array(out.values)
    }

    @Test("Full fine-tuning: frozen units' weights are bit-identical after AdamW steps", arguments: ["gpt2", "llama"])
    func fullFineTuning(family: String) throws {
        let config = family == "gpt2" ? UnitFixtures.gpt2 : UnitFixtures.llama
        let model = try TransformerModel(config: config, seed: 7)
        let map = try UnitFixtures.map(for: config, seed: 12)
        let mask = UnitMask(map: map, freeze: .scuPlusTopCU(0.3), route: .ruPlusCU)
        let summary = try UnitFreezer.apply(mask, to: model)
        #expect(summary.maskedElements > 0)
        let before = UnitFixtures.snapshot(model)
        train(model, parameters: model.namedParameters.map(\.1))

        var frozenSeen = 0, freeChanged = 0, freeTotal = 0
        for (lin, rows, cols) in frozenSlices(model, mask) {
            let w0 = before[lin.weight.name]!, w = lin.weight.value.scalars, n = lin.inFeatures
            for r in 0..<lin.outFeatures {
                for c in 0..<n {
                    let i = r * n + c
                    if rows.contains(r) || cols.contains(c) {
                        #expect(w[i].bitPattern == w0[i].bitPattern, "\(lin.path)[\(r), \(c)] moved")
                        frozenSeen += 1
                    } else {
                        freeTotal += 1
                        if w[i] != w0[i] { freeChanged += 1 }
                    }
                }
                if let b = lin.bias, rows.contains(r) { #expect(b.value.data[r].bitPattern == before[b.name]![r].bitPattern) }
            }
        }
        #expect(frozenSeen > 0)
        #expect(freeChanged > freeTotal * 9 / 10)
    }

    @Test("LoRA: frozen units' effective weights are bit-identical after AdamW steps")
    func loraAdapters() throws {
        let config = UnitFixtures.llama
        let model = try TransformerModel(config: config, seed: 9, trainable: false)
        let attached = try LoRA.attach(to: model, LoRA.Parameters(rank: 2, alpha: 4, seed: 3)) { $0 != "lm_head" }
        var rng = SeededRandom(seed: 4)
        // Nonzero B, so a frozen row must be pinned by the freeze, not by LoRA's zero initialisation.
        for (_, adapter) in attached { rng.fillNormal(adapter.b.value, std: 0.3) }
        let adapters = Dictionary(uniqueKeysWithValues: attached)
        func effective(_ lin: Linear) -> [Float] {
            let d = adapters[lin.path]!.delta()
            return (0..<d.count).map { lin.weight.value.data[$0] + d.data[$0] }
        }
        let map = try UnitFixtures.map(for: config, seed: 30)
        let mask = UnitMask(map: map, freeze: .scuPlusCU, route: .all)
        let summary = try UnitFreezer.apply(mask, to: model)
        #expect(summary.maskedElements == 0)   // base weights are not trainable here
        #expect(summary.adapterCalls > 0)
        let slices = frozenSlices(model, mask)
        let before = Dictionary(uniqueKeysWithValues: slices.map { ($0.0.path, effective($0.0)) })
        train(model, parameters: adapters.values.flatMap { $0.namedParameters.map(\.1) })

        var frozenSeen = 0, freeChanged = 0
        for (lin, rows, cols) in slices {
            let e0 = before[lin.path]!, e = effective(lin), n = lin.inFeatures
            for r in 0..<lin.outFeatures {
                for c in 0..<n {
                    if rows.contains(r) || cols.contains(c) {
                        #expect(e[r * n + c].bitPattern == e0[r * n + c].bitPattern, "\(lin.path)[\(r), \(c)] moved")
                        frozenSeen += 1
                    } else if e[r * n + c] != e0[r * n + c] {
                        freeChanged += 1
                    }
                }
            }
        }
        #expect(frozenSeen > 0)
        #expect(freeChanged > 0)
    }

    @Test("A mask for another architecture is rejected")
    func shapeCheck() throws {
        let model = try TransformerModel(config: UnitFixtures.gpt2, seed: 1)
        let mask = UnitMask(map: try UnitFixtures.map(for: UnitFixtures.llama, seed: 1), classes: [.scu])
        #expect(throws: UnitMapError.self) { try UnitFreezer.apply(mask, to: model) }
    }
}
