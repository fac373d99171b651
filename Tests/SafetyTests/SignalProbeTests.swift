import Engine
import Foundation
import Models
import Testing
import TestSupport
import Tokenizers
@testable import Training
@testable import Safety

/// Training the guard's answer probes (`safety.signal.answer_probes`).
@Suite struct SignalProbeTests {
    @Test func probeColumnsReadTheirWindowAndNothingReadsThem() {
        // One row: CLS, prompt 2, answer 3 (length 6), then two probe columns; the second row has one probe.
        let probes: [[Range<Int>]] = [[3..<4, 3..<6], [4..<5]]
        let m = SignalMask.build(pattern: .sft, batch: 2, length: 6, promptLengths: [2, 3], rowLengths: [5, 5], probes: probes)
        #expect(m.queries == 8 && m.keys == 8)
        #expect((0..<8).map { m.isAllowed(0, 6, $0) } == [false, false, false, true, false, false, true, false])
        #expect((0..<8).map { m.isAllowed(0, 7, $0) } == [false, false, false, true, true, true, false, true])
        // An unused probe column reads only itself.
        #expect((0..<8).map { m.isAllowed(1, 7, $0) } == (0..<8).map { $0 == 7 })
        // The row's own columns are as without probes, and none reads a probe.
        let plain = SignalMask.build(pattern: .sft, batch: 2, length: 6, promptLengths: [2, 3], rowLengths: [5, 5])
        for b in 0..<2 {
            for i in 0..<6 {
                #expect((0..<6).map { m.isAllowed(b, i, $0) } == (0..<6).map { plain.isAllowed(b, i, $0) })
                #expect(!m.isAllowed(b, i, 6) && !m.isAllowed(b, i, 7))
            }
        }
    }

    @Test func probesFollowTheDefaultGuardsWindows() throws {
        let tokenizer = try Tiny.tokenizer()
        let (_, _, signal) = try SafetySignal.adding(to: try Tiny.model(vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 3)
        let objective = SignalObjective(signal: signal, lambda: 0.5, answerProbes: true)
        // Prepared rows (CLS at 0): prompt 2 + answer 20, prompt 3 + answer 2, unlabelled, and no answer.
        let b = Batch(batch: 4, length: 23, ids: [Int32](repeating: 5, count: 4 * 23), labels: [Int32](repeating: 5, count: 4 * 23),
                      rowLengths: [22, 5, 22, 4], promptLengths: [2, 3, 2, 4], safetyClasses: [0, 1, nil, 1])
        let w = objective.probeWindows(b, classes: [0, 1, -100, 1])
        // Checks after 1, 2, 4, 8, 16 answer tokens, each over the latest 15; answers start at column 1 + prompt.
        #expect(w[0] == [3..<4, 3..<5, 3..<7, 3..<11, 4..<19])
        #expect(w[1] == [4..<5, 4..<6])
        #expect(w[2].isEmpty && w[3].isEmpty)
        #expect(SignalObjective(signal: signal, lambda: 0.5).probeWindows(b, classes: [0, 1, -100, 1]).allSatisfy { $0.isEmpty })
    }

    @Test(arguments: [ModelConfig.Family.gpt2, .llama])
    func trainedProbesAreTheGuardsProbes(family: ModelConfig.Family) throws {
        let (model, tokenizer, signal, prompt) = try SignalGuardTests.setup(family)
        for i in 0..<signal.weight.value.count { signal.weight.value.data[i] *= 30 }
        // Threshold 2 never intervenes, so every scheduled check is recorded over an unchanged answer.
        let decoder = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: GuardOptions(threshold: 2))
        let result = try decoder.generate(prompt: prompt, options: SignalGuardTests.free)
        let checks = result.trace.filter { $0.step > 0 }
        #expect(checks.map(\.step) == [1, 2, 4, 8, 16])

        let ids = (prompt + result.tokens).map { Int32($0) }
        let batch = Batch(batch: 1, length: ids.count, ids: ids, labels: ids, rowLengths: [ids.count], promptLengths: [prompt.count],
                          safetyClasses: [1])
        let objective = SignalObjective(signal: signal, lambda: 1, answerProbes: true)
        let f = objective.forward(tape: Tape(), model: model, batch: batch)
        #expect(f.windows[0].count == checks.count)
        let d = model.config.hiddenSize
        for (k, check) in checks.enumerated() {
            let answerStart = 1 + prompt.count
            #expect(f.windows[0][k] == (answerStart + check.window.from)..<(answerStart + check.window.to))
            let p = signal.maliciousProbability(f.hidden.value.data + (f.length + k) * d)
            #expect(abs(p - check.pMalicious) < 1e-4, "step \(check.step): trained \(p), guard \(check.pMalicious)")
        }
        #expect(Set(checks.map { ($0.pMalicious * 1e4).rounded() }).count > 1, "the probes should see different windows")
    }

    @Test func probesAddTheirOwnTermAndLeaveTheOthersAlone() throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(.llama, vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 3)
        for i in 0..<signal.weight.value.count { signal.weight.value.data[i] *= 20 }
        let batch = SignalTests.batch(tokenizer)
        let (plainLoss, plain) = SignalObjective(signal: signal, lambda: 0.4).lossAndMetrics(tape: Tape(), model: model, batch: batch)
        let objective = SignalObjective(signal: signal, lambda: 0.4, answerProbes: true)
        let (loss, metrics) = objective.lossAndMetrics(tape: Tape(), model: model, batch: batch)
        #expect(plain["probe_loss"] == nil)
        #expect(abs(metrics["lm_loss"]! - plain["lm_loss"]!) < 1e-5)
        #expect(abs(metrics["cls_loss"]! - plain["cls_loss"]!) < 1e-5)
        // By hand: row 0 (malicious, answer 4) has probes after 1, 2, 4 tokens; row 1 (benign, answer 2) after 1, 2.
        let f = objective.forward(tape: Tape(), model: model, batch: batch)
        #expect(f.windows.map(\.count) == [3, 2] && f.width == f.length + 3)
        var ce: Float = 0
        for (r, w) in f.windows.enumerated() {
            for k in w.indices {
                let p = signal.maliciousProbability(f.hidden.value.data + (r * f.width + f.length + k) * 16)
                ce -= r == 0 ? logf(p) : logf(1 - p)
            }
        }
        ce /= 5
        #expect(abs(metrics["probe_loss"]! - ce) < 1e-5)
        #expect(abs(loss.value[flat: 0] - (plainLoss.value[flat: 0] + 0.4 * ce)) < 1e-4)
    }
}
