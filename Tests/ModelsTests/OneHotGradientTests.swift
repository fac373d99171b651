import Engine
import Testing
@testable import Models

/// `oneHotGradients` (GCG's token ranking) against finite differences: moving the input
/// embedding at position p from token a toward token b by ε changes the target
/// log-probability by ε · (g[b] − g[a]) to first order.
@Suite struct OneHotGradientTests {
    @Test func matchesFiniteDifferencesOfTheTargetLogProbability() throws {
        // Untied embeddings: moving an embedding row then changes the input only.
        let model = try TransformerModel(config: TinyConfigs.llama, seed: 41)
        let ids = [5, 17, 9, 33, 21, 40, 12, 2]
        let targets = 5..<8
        let positions = [1, 3]
        let grads = try model.oneHotGradients(ids, targets: targets, positions: positions)
        #expect(grads.count == 2 && grads[0].count == TinyConfigs.llama.vocabSize)
        func targetLogprob() throws -> Double {
            try model.tokenLogprobs(ids)[(targets.lowerBound - 1)..<(targets.upperBound - 1)].reduce(0) { $0 + Double($1) }
        }
        let base = try targetLogprob()
        let table = model.tokenEmbedding.table.value, d = TinyConfigs.llama.hiddenSize
        let eps: Float = 1e-2
        for (i, p) in positions.enumerated() {
            let a = ids[p]  // appears once in `ids`, so its row is this position's input alone
            for b in [0, 44, 58] {
                let saved = (0..<d).map { table.data[a * d + $0] }
                for j in 0..<d { table.data[a * d + j] += eps * (table.data[b * d + j] - saved[j]) }
                let moved = try targetLogprob()
                for j in 0..<d { table.data[a * d + j] = saved[j] }
                let numeric = (moved - base) / Double(eps)
                let analytic = Double(grads[i][b] - grads[i][a])
                #expect(abs(numeric - analytic) <= 0.05 * abs(analytic) + 2e-4, "position \(p), token \(b): \(numeric) vs \(analytic)")
            }
        }
    }
}
