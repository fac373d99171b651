import Engine
import Models
import Testing
@testable import Safety

@Suite("SSAH unit scores")
struct UnitScoreTests {
    /// Captures X_B one sequence at a time (no padding anywhere), then computes
    /// Var · ‖B[:, j]‖² by hand in two passes.
    private func handScores(model: TransformerModel, sequences: [[Int32]]) -> UnitScores {
        var mlpRows = [[[Float]]](repeating: [], count: model.blocks.count)
        var attnRows = mlpRows
        for (l, block) in model.blocks.enumerated() {
            block.mlp.down.inputObserver = { x in
                for r in 0..<x.rows { mlpRows[l].append(Array(UnsafeBufferPointer(start: x.data + r * x.lastDim, count: x.lastDim))) }
            }
            block.attention.output.inputObserver = { x in
                for r in 0..<x.rows { attnRows[l].append(Array(UnsafeBufferPointer(start: x.data + r * x.lastDim, count: x.lastDim))) }
            }
        }
        let tape = Tape()
        for s in sequences {
            tape.withoutGrad { _ = model.hiddenStates(tape: tape, ids: s, batch: 1, length: s.count) }
            tape.reset()
        }
        for block in model.blocks { block.mlp.down.inputObserver = nil; block.attention.output.inputObserver = nil }

        func channelScores(_ rows: [[Float]], _ w: Tensor) -> [Double] {
            let n = Double(rows.count), c = rows[0].count
            return (0..<c).map { j in
                let mean = rows.reduce(0.0) { $0 + Double($1[j]) } / n
                let variance = rows.reduce(0.0) { $0 + (Double($1[j]) - mean) * (Double($1[j]) - mean) } / n
                let norm = (0..<w.shape[0]).reduce(0.0) { $0 + Double(w.data[$1 * c + j]) * Double(w.data[$1 * c + j]) }
                return variance * norm
            }
        }
        var mlp: [[Double]] = [], attn: [[Double]] = []
        for (l, block) in model.blocks.enumerated() {
            mlp.append(channelScores(mlpRows[l], block.mlp.down.weight.value))
            let ch = channelScores(attnRows[l], block.attention.output.weight.value)
            let d = block.attention.headDim
            attn.append((0..<block.attention.heads).map { h in (0..<d).reduce(0.0) { $0 + ch[h * d + $1] } })
        }
        return UnitScores(mlp: mlp, attn: attn, tokens: mlpRows[0].count)
    }

    private func expectClose(_ a: [[Double]], _ b: [[Double]]) {
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            #expect(x.count == y.count)
            for (u, v) in zip(x, y) { #expect(abs(u - v) <= 1e-4 * max(abs(v), 1e-6), "\(u) vs \(v)") }
        }
    }

    @Test("Scores equal a hand computation (GPT-2, padded batches)", arguments: [1, 3])
    func gpt2MatchesHand(batchSize: Int) throws {
        let model = try TransformerModel(config: UnitFixtures.gpt2, seed: 3, trainable: false)
        let seqs = UnitFixtures.sequences(count: 5, seed: 11)
        let scores = try UnitScorer(model: model, batchSize: batchSize).score(sequences: seqs, name: "test")
        let hand = handScores(model: model, sequences: seqs)
        #expect(scores.tokens == seqs.reduce(0) { $0 + $1.count })
        #expect(scores.tokens == hand.tokens)
        #expect(scores.mlp[0].count == 24 && scores.attn[0].count == 4)
        expectClose(scores.mlp, hand.mlp)
        expectClose(scores.attn, hand.attn)
        #expect(scores.mlp.allSatisfy { $0.allSatisfy { $0 > 0 } })
    }

    @Test("Scores equal a hand computation (Llama with grouped-query attention)")
    func llamaMatchesHand() throws {
        let model = try TransformerModel(config: UnitFixtures.llama, seed: 5, trainable: true)
        let seqs = UnitFixtures.sequences(count: 4, seed: 2)
        let scores = try UnitScorer(model: model, batchSize: 4).score(sequences: seqs, name: "test")
        let hand = handScores(model: model, sequences: seqs)
        expectClose(scores.mlp, hand.mlp)
        expectClose(scores.attn, hand.attn)
        // Observers are removed afterwards.
        #expect(model.blocks.allSatisfy { $0.mlp.down.inputObserver == nil && $0.attention.output.inputObserver == nil })
    }

    @Test("Chunked variance equals a two-pass variance over all rows, even with a large mean")
    func channelVariance() {
        var rng = SeededRandom(seed: 9)
        let x = Tensor(zeros: [50, 3])
        for i in 0..<x.count { x.data[i] = 1000 + rng.normal() * Float(1 + i % 3) }
        let acc = ChannelVariance(channels: 3)
        acc.add(x.slice(0..<20).reshaped([20, 3]), rows: Array(0..<20))
        acc.add(Tensor(shape: [30, 3], scalars: Array(x.scalars[60...])), include: { _ in true })
        acc.add(x, rows: [])
        #expect(acc.count == 50)
        for j in 0..<3 {
            let col = (0..<50).map { Double(x.data[$0 * 3 + j]) }
            let mean = col.reduce(0, +) / 50
            let v = col.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 50
            #expect(abs(acc.variance[j] - v) < 1e-9 * v)
            #expect(abs(acc.means[j] - mean) < 1e-9 * mean)
        }
    }

    @Test("An empty dataset and an out-of-vocabulary token are errors")
    func badInput() throws {
        let model = try TransformerModel(config: UnitFixtures.gpt2, seed: 1, trainable: false)
        #expect(throws: UnitMapError.emptyDataset(name: "s")) { try UnitScorer(model: model).score(sequences: [[]], name: "s") }
        #expect(throws: UnitMapError.self) { try UnitScorer(model: model).score(sequences: [[1, 2, 99]], name: "s") }
    }
}
