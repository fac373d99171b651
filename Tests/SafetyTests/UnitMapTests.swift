import Checkpoints
import Engine
import Foundation
import Models
import Testing
@testable import Safety

@Suite("SSAH unit map")
struct UnitMapTests {
    @Test("Normalisation divides by the layer mean; an all-zero layer stays zero")
    func normalisation() {
        #expect(UnitMap.normalise([1, 2, 3, 6]) == [1.0 / 3, 2.0 / 3, 1, 2])
        #expect(UnitMap.normalise([0, 0]) == [0, 0])
        #expect(UnitMap.normalise([]) == [])
    }

    @Test("Layers with different scales become comparable")
    func layerScale() throws {
        // Layer 1 is layer 0 times 1000 on both sets: normalised scores (and classes) coincide.
        let base: [Double] = [1, 5, 2, 8, 3, 7, 4, 6, 9, 10]
        let s = UnitScores(mlp: [base, base.map { $0 * 1000 }], attn: [[1, 2], [1000, 2000]], tokens: 1)
        let u = UnitScores(mlp: [base.reversed(), base.reversed().map { $0 * 1000 }], attn: [[2, 1], [2000, 1000]], tokens: 1)
        let map = try UnitMap(safety: s, utility: u, sizes: UnitSizes(scu: 0.1, ucu: 0.1, ru: 0.2))
        for (x, y) in zip(map.mlp[0].safety, map.mlp[1].safety) { #expect(abs(x - y) < 1e-12) }
        #expect(map.mlp[0].classes == map.mlp[1].classes)
        #expect(map.attn[0].safety == [2.0 / 3, 4.0 / 3])
    }

    @Test("Quotas are met, classes are disjoint, and each class is the top of its ranking")
    func quotas() throws {
        let sizes = UnitSizes(scu: 0.05, ucu: 0.1, ru: 0.2)
        let map = try UnitFixtures.map(for: UnitFixtures.llama, seed: 4, sizes: sizes)
        let n = map.unitCount(.mlp)   // 2 layers × 20 neurons
        #expect(n == 40)
        let counts = map.classCounts(.mlp)
        #expect(counts[.scu] == 2 && counts[.ucu] == 4 && counts[.ru] == 8 && counts[.cu] == 26)
        #expect(map.classCounts(.attn)[.ru] == 2)   // 8 heads × 0.2 rounded
        #expect(map.classCounts().values.reduce(0, +) == 48)

        var all: [(d: Double, s: Double, c: UnitClass)] = []
        for l in 0..<map.layerCount {
            let e = map.mlp[l]
            for j in 0..<e.count { all.append((e.safety[j] - e.utility[j], e.safety[j] + e.utility[j], e.classes[j])) }
        }
        // SCU: highest I_S − I_U overall.
        let minSCU = all.filter { $0.c == .scu }.map(\.d).min()!
        #expect(all.filter { $0.c != .scu }.allSatisfy { $0.d <= minSCU })
        // UCU: lowest I_S − I_U among the rest.
        let maxUCU = all.filter { $0.c == .ucu }.map(\.d).max()!
        #expect(all.filter { $0.c != .scu && $0.c != .ucu }.allSatisfy { $0.d >= maxUCU })
        // RU: lowest I_S + I_U among units neither critical class took.
        let maxRU = all.filter { $0.c == .ru }.map(\.s).max()!
        #expect(all.filter { $0.c == .cu }.allSatisfy { $0.s >= maxRU })
    }

    @Test("Assignment order: critical classes first, RU only from what they leave")
    func assignmentOrder() throws {
        // Unit 0 has the lowest I_S + I_U AND the lowest I_S − I_U: it goes to UCU, not RU.
        let s = UnitScores(mlp: [[0.0, 1, 1, 1, 1, 1, 1, 1, 1, 3]], attn: [[1, 1]], tokens: 1)
        let u = UnitScores(mlp: [[0.5, 1, 1, 1, 1, 1, 1, 1, 1.2, 0.3]], attn: [[1, 1]], tokens: 1)
        let map = try UnitMap(safety: s, utility: u, sizes: UnitSizes(scu: 0.1, ucu: 0.1, ru: 0.1))
        #expect(map.mlp[0].classes[0] == .ucu)
        #expect(map.mlp[0].classes[9] == .scu)
        #expect(map.mlp[0].units(of: .ru).count == 1)
        #expect(map.mlp[0].units(of: .ru) != [0])
    }

    @Test("Complex units rank by I_S − I_U; the top fraction is a prefix of that ranking")
    func complexRanking() throws {
        let map = try UnitFixtures.map(for: UnitFixtures.gpt2, seed: 8)
        let ranking = map.complexRanking(.mlp)
        #expect(ranking.count == map.classCounts(.mlp)[.cu])
        let keys = ranking.map { map.mlp[$0.layer].safety[$0.unit] - map.mlp[$0.layer].utility[$0.unit] }
        #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 >= $1 })
        let top = map.topComplexUnits(.mlp, fraction: 0.25)
        #expect(top.count == Int((0.25 * Double(ranking.count)).rounded()))
        #expect(zip(top, ranking).allSatisfy { $0.layer == $1.layer && $0.unit == $1.unit })
    }

    @Test("Sizes parse, reject bad input, and must leave complex units")
    func sizes() throws {
        #expect(try UnitSizes(parsing: "scu=0.02,ru=0.3") == UnitSizes(scu: 0.02, ucu: 0.10, ru: 0.3))
        #expect(throws: UnitMapError.self) { try UnitSizes(parsing: "scu=0.5,ucu=0.3,ru=0.3") }
        #expect(throws: UnitMapError.self) { try UnitSizes(parsing: "scu=x") }
        #expect(throws: UnitMapError.self) { try UnitSizes(parsing: "scu=0.1,scu=0.1") }
        #expect(throws: UnitMapError.self) { try UnitSizes(parsing: "xcu=0.1") }
        #expect(throws: UnitMapError.self) { try UnitSizes(parsing: "ru=-0.1") }
    }

    @Test("The map survives the checkpoint's /units section, in memory and on disk")
    func checkpointRoundTrip() throws {
        let config = UnitFixtures.llama
        let map = try UnitFixtures.map(for: config, seed: 21, sizes: UnitSizes(scu: 0.05, ucu: 0.15, ru: 0.2))
        let units = map.checkpointUnits(attributes: ["safety_sha256": .string("abc")])
        #expect(units.layers[1]?["attn"]?.scores.shape == [4, 2])
        #expect(units.classCounts == UnitClass.allCases.map { map.classCounts()[$0]! })

        let model = try TransformerModel(config: config, seed: 1)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("units-\(UUID().uuidString).h5")
        defer { try? FileManager.default.removeItem(at: url) }
        try Checkpoint(config: config, weights: model.huggingFaceWeights(), units: units).write(to: url)
        let read = try Checkpoint.read(from: url)
        let back = try UnitMap(checkpoint: try #require(read.units), config: config, source: "t.h5")
        #expect(back.sizes == map.sizes)
        #expect(read.units?.attributes["safety_sha256"] == .string("abc"))
        for l in 0..<config.numLayers {
            for m in UnitModule.allCases {
                #expect(back[l, m].classes == map[l, m].classes)
                #expect(back[l, m].safety == map[l, m].safety.map { Double(Float($0)) })
                #expect(back[l, m].utility == map[l, m].utility.map { Double(Float($0)) })
            }
        }
    }

    @Test("A stored map that does not fit the model is an error")
    func checkpointMismatch() throws {
        let map = try UnitFixtures.map(for: UnitFixtures.llama, seed: 2)
        var units = map.checkpointUnits()
        #expect(throws: UnitMapError.self) { try UnitMap(checkpoint: units, config: UnitFixtures.gpt2, source: "x") }
        units.layers[1]?["mlp"] = nil
        #expect(throws: UnitMapError.missingEntry(source: "x", key: "1/mlp")) {
            try UnitMap(checkpoint: units, config: UnitFixtures.llama, source: "x")
        }
    }

    @Test("Drift counts transitions between a parent's and a child's classes")
    func drift() throws {
        let parent = try UnitFixtures.map(for: UnitFixtures.gpt2, seed: 1)
        let same = try UnitDrift(parent: parent, child: parent)
        #expect(same.changed == 0)
        #expect((0..<4).allSatisfy { r in same.counts[r][r] == same.counts[r].reduce(0, +) })

        let child = try UnitFixtures.map(for: UnitFixtures.gpt2, seed: 2)
        let drift = try UnitDrift(parent: parent, child: child)
        var expected = [[Int]](repeating: [0, 0, 0, 0], count: 4)
        for l in 0..<parent.layerCount {
            for m in UnitModule.allCases {
                for j in 0..<parent[l, m].count {
                    expected[Int(parent[l, m].classes[j].rawValue)][Int(child[l, m].classes[j].rawValue)] += 1
                }
            }
        }
        #expect(drift.counts == expected)
        #expect(drift.counts.flatMap { $0 }.reduce(0, +) == parent.unitCount(.mlp) + parent.unitCount(.attn))
        let scu = drift.counts[3].reduce(0, +)
        #expect(drift.fraction(from: .scu, to: .cu) == Double(drift.count(from: .scu, to: .cu)) / Double(scu))
        #expect(drift.table.contains("SCU -> CU: \(drift.count(from: .scu, to: .cu)) of \(scu)"))

        let other = try UnitFixtures.map(for: UnitFixtures.llama, seed: 2)
        #expect(throws: UnitMapError.self) { try UnitDrift(parent: parent, child: other) }
    }

    @Test("The SVG has one strip per layer and one square per head")
    func svg() throws {
        let map = try UnitFixtures.map(for: UnitFixtures.gpt2, seed: 5)
        let svg = UnitMapSVG.render(map, title: "a <b>")
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.contains("a &lt;b&gt;"))
        #expect(svg.components(separatedBy: "<title>layer 1 head ").count - 1 == 4)
        #expect(svg.components(separatedBy: "<title>layer 0 MLP:").count - 1 == Set(map.mlp[0].classes).count)
    }
}
