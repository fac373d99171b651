import Engine
import Models
import Testing
import TestSupport
@testable import Training
@testable import Safety

/// Data-parallel training splits a batch's rows across processes (`Batch.share`, the
/// trainer's `share(ofWhole:)`): the shares' gradients, added up, must be the whole
/// batch's, with the SA-ESS terms, answer probes, a malicious weight and LoRA dropout.
@Suite struct ShardedLossTests {
    /// Five rows of different prompt and answer lengths; one unlabelled, two malicious.
    static func batch() -> Batch {
        let length = 12
        let rows: [(prompt: Int, answer: Int, cls: Int32?)] = [(3, 8, 1), (2, 3, 0), (4, 6, nil), (2, 9, 1), (5, 2, 0)]
        var ids: [Int32] = [], labels: [Int32] = []
        for (r, row) in rows.enumerated() {
            let n = row.prompt + row.answer
            for t in 0..<length {
                let id = t < n ? Int32(5 + (r * 7 + t * 3) % 40) : 0
                ids.append(id)
                labels.append(t >= row.prompt && t < n ? id : -100)
            }
        }
        return Batch(batch: rows.count, length: length, ids: ids, labels: labels, rowLengths: rows.map { $0.prompt + $0.answer },
                     promptLengths: rows.map(\.prompt), safetyClasses: rows.map(\.cls))
    }

    /// The trainable parameters' gradients after `body` runs forward and backward passes.
    static func gradients(_ model: TransformerModel, _ objective: SignalObjective, _ adapters: [(String, LoRAAdapter)],
                          _ body: () -> Void) -> [[Float]] {
        let trainable = adapters.flatMap { $0.1.namedParameters.map(\.1) } + objective.namedParameters.map(\.1)
        for p in trainable { p.grad = nil }
        for (_, a) in adapters { a.reseedDropout(42) }
        body()
        return trainable.map { $0.grad?.scalars ?? [] }
    }

    /// 7 processes for 5 rows: two get a blank row (`Batch.share` of an empty range).
    @Test(arguments: [2, 3, 7])
    func sharesAddUpToTheWholeBatch(processes: Int) throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(.llama, vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 3)
        let adapters = try LoRA.attach(to: model, LoRA.Parameters(rank: 2, alpha: 4, dropout: 0.3, seed: 1)) { $0.hasSuffix("proj") }
        for (_, a) in adapters { for i in 0..<a.b.value.count { a.b.value.data[i] = 0.05 * Float(i % 7) - 0.15 } }
        let objective = SignalObjective(signal: signal, lambda: 0.5, maliciousWeight: 2, answerProbes: true)
        let batch = Self.batch()

        var wholeLoss = 0.0
        let whole = Self.gradients(model, objective, adapters) {
            let tape = Tape()
            let out = objective.loss(tape: tape, model: model, batch: batch)
            let loss = out.total(tape: tape)!
            wholeLoss = Double(loss.value[flat: 0])
            tape.backward(loss)
        }

        var sharedLoss = 0.0
        let shared = Self.gradients(model, objective, adapters) {
            let group = (0..<processes).map { rank in (0..<batch.batch).split(rank: rank, of: processes) }
            // What every process contributes to the all-reduce, then each one's backward.
            let outs = group.map { rows -> (Tape, ObjectiveLoss) in
                // Each process's adapters start the step's dropout stream from the same seed.
                for (_, a) in adapters { a.reseedDropout(42) }
                let tape = Tape()
                tape.rowShard = rows.isEmpty ? nil : (rows, batch.batch)
                return (tape, objective.loss(tape: tape, model: model, batch: batch.share(rows)))
            }
            var sums = [Double](repeating: 0, count: outs[0].1.sums.count)
            for (_, out) in outs { for (i, v) in out.sums.enumerated() { sums[i] += v } }
            let total = outs[0].1.whole(from: sums)
            sharedLoss = total.loss
            for (tape, out) in outs {
                if let loss = out.share(ofWhole: total.termCounts, tape: tape) { tape.backward(loss) }
            }
        }
        #expect(abs(sharedLoss - wholeLoss) < 1e-5 * max(1, abs(wholeLoss)))
        let scale = whole.flatMap { $0 }.map(abs).max() ?? 0
        #expect(scale > 0)
        for (a, b) in zip(whole, shared) {
            #expect(a.count == b.count)
            let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(diff <= 1e-5 * scale, "gradients differ by \(diff) (largest \(scale))")
        }
    }

    @Test func dropoutDrawsPerRowOfTheWholeBatch() {
        let x = Variable(Tensor(shape: [5, 3, 4], scalars: (0..<60).map { Float($0 % 11) + 1 }), requiresGrad: true)
        var rng = SeededRandom(seed: 9)
        let whole = Tape().dropout(x, p: 0.5, rng: &rng).value.scalars
        var shares: [Float] = []
        var shared = SeededRandom(seed: 9)
        for rows in [0..<2, 2..<5] {
            let part = Variable(Tensor(shape: [rows.count, 3, 4], scalars: Array(x.value.scalars[(rows.lowerBound * 12)..<(rows.upperBound * 12)])),
                                requiresGrad: true)
            let tape = Tape()
            tape.rowShard = (rows, 5)
            var rng = shared
            shares += tape.dropout(part, p: 0.5, rng: &rng).value.scalars
            if rows.upperBound == 5 { shared = rng }
        }
        #expect(shares == whole)
        // Every share leaves the stream where the whole batch does.
        #expect(shared.next() == rng.next())
    }
}

extension Range where Bound == Int {
    /// The rank-th of `processes` contiguous shares, as `ProcessGroup.share(ofRows:)` cuts them.
    fileprivate func split(rank: Int, of processes: Int) -> Range<Int> {
        (count * rank / processes)..<(count * (rank + 1) / processes)
    }
}
