import Checkpoints
import Engine
import Foundation
import Models
import Testing
import TestSupport
import Tokenizers
@testable import Training
@testable import Safety

@Suite struct SignalTests {
    // MARK: Mask

    @Test func sftMaskFollowsTheSpans() {
        // Row 0: CLS, 3 prompt tokens, 2 answer tokens (length 6). Row 1: CLS, 2 prompt, 1 answer, 2 padding.
        let m = SignalMask.build(pattern: .sft, batch: 2, length: 6, promptLengths: [3, 2], rowLengths: [5, 3])
        // CLS reads itself and the prompt only.
        #expect((0..<6).map { m.isAllowed(0, 0, $0) } == [true, true, true, true, false, false])
        // Prompt rows never read CLS; causal among tokens.
        for i in 1...3 {
            #expect(!m.isAllowed(0, i, 0))
            #expect((1..<6).map { m.isAllowed(0, i, $0) } == (1..<6).map { $0 <= i })
        }
        // Answer rows read CLS and everything before them.
        for i in 4...5 { #expect((0..<6).map { m.isAllowed(0, i, $0) } == (0..<6).map { $0 <= i }) }
        // Padding: no real query reads it, padding queries read nothing.
        #expect((0..<6).map { m.isAllowed(1, 0, $0) } == [true, true, true, false, false, false])
        #expect((0..<6).map { m.isAllowed(1, 3, $0) } == [true, true, true, true, false, false])
        for i in 4...5 { #expect((0..<6).allSatisfy { !m.isAllowed(1, i, $0) }) }
        for i in 0..<4 { #expect(!m.isAllowed(1, i, 4) && !m.isAllowed(1, i, 5)) }
    }

    @Test func pretrainMaskHidesClsFromEveryone() {
        let m = SignalMask.build(pattern: .pretrain, batch: 1, length: 5, promptLengths: [2], rowLengths: [3])
        #expect((0..<5).map { m.isAllowed(0, 0, $0) } == [true, true, true, true, false])
        for i in 1...3 {
            #expect(!m.isAllowed(0, i, 0))
            #expect((1..<5).map { m.isAllowed(0, i, $0) } == (1..<5).map { $0 <= i && $0 < 4 })
        }
    }

    // MARK: Objective

    static func batch(_ tokenizer: Tokenizer) -> Batch {
        // Two rows, right-padded to 7: prompt 3 + answer 4, and prompt 2 + answer 2.
        let a: [Int32] = [5, 9, 14, 20, 21, 22, 23], b: [Int32] = [6, 10, 30, 31, 0, 0, 0]
        let la: [Int32] = [-100, -100, -100, 20, 21, 22, 23], lb: [Int32] = [-100, -100, 30, 31, -100, -100, -100]
        return Batch(batch: 2, length: 7, ids: a + b, labels: la + lb, rowLengths: [7, 4], promptLengths: [3, 2],
                     safetyClasses: [1, 0])
    }

    @Test(arguments: [ModelConfig.Family.gpt2, .llama])
    func objectiveIsLanguageModelLossPlusWeightedClassification(family: ModelConfig.Family) throws {
        let tokenizer = try Tiny.tokenizer()
        let base = try Tiny.model(family, vocab: tokenizer.vocabSize)
        let (model, _, signal) = try SafetySignal.adding(to: base, tokenizer: tokenizer, seed: 3)
        signal.bias.value.data[1] = 0.3
        let objective = SignalObjective(signal: signal, lambda: 0.25)
        let batch = Self.batch(tokenizer)
        let tape = Tape()
        let (loss, metrics) = objective.lossAndMetrics(tape: tape, model: model, batch: batch)

        // By hand: the same layout, the LM loss from the model, the CE from the head's probabilities.
        let p = objective.prepared(batch, maxPositions: model.config.maxPositions)
        #expect(p.length == 8 && p.ids[0] == Int32(signal.clsTokenId) && p.ids[8] == Int32(signal.clsTokenId))
        #expect(Array(p.ids[1..<8]) == Array(batch.ids[0..<7]))
        let mask = SignalMask.build(pattern: .sft, batch: 2, length: 8, promptLengths: [3, 2], rowLengths: [7, 4])
        let ref = Tape()
        let lm = model.loss(tape: ref, ids: p.ids, labels: p.labels, batch: 2, length: 8, mask: mask).value[flat: 0]
        let hidden = model.hiddenStates(tape: ref, ids: p.ids, batch: 2, length: 8, mask: mask).value
        let p0 = signal.maliciousProbability(hidden.data)          // row 0: malicious
        let p1 = signal.maliciousProbability(hidden.data + 8 * 16)  // row 1: benign
        let ce = (-logf(p0) - logf(1 - p1)) / 2
        #expect(abs(metrics["lm_loss"]! - lm) < 1e-5)
        #expect(abs(metrics["cls_loss"]! - ce) < 1e-5)
        #expect(abs(loss.value[flat: 0] - (lm + 0.25 * ce)) < 1e-5)
        let accuracy = Float((p0 > 0.5 ? 1 : 0) + (p1 <= 0.5 ? 1 : 0)) / 2
        #expect(metrics["cls_accuracy"] == accuracy)
    }

    @Test func unlabelledRowsAddNoClassificationLoss() throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 3)
        let objective = SignalObjective(signal: signal, lambda: 0.5)
        var batch = Self.batch(tokenizer)
        batch.safetyClasses = [nil, nil]
        let tape = Tape()
        let (loss, metrics) = objective.lossAndMetrics(tape: tape, model: model, batch: batch)
        #expect(metrics["cls_loss"] == 0)
        #expect(loss.value[flat: 0] == metrics["lm_loss"])
        tape.backward(loss)
        #expect(signal.weight.grad == nil || signal.weight.grad!.scalars.allSatisfy { $0 == 0 })

        // One labelled row: the CE is that row's alone.
        batch.safetyClasses = [nil, 0]
        let (_, one) = objective.lossAndMetrics(tape: Tape(), model: model, batch: batch)
        batch.safetyClasses = [1, 0]
        let (_, both) = objective.lossAndMetrics(tape: Tape(), model: model, batch: batch)
        #expect(one["cls_loss"]! > 0)
        #expect(abs(one["cls_loss"]! - both["cls_loss"]!) > 1e-6)
    }

    @Test func rawTextRowsAreAllPromptForTheSignal() throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(.llama, vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 3)
        let objective = SignalObjective(signal: signal, lambda: 0.5)
        // One raw-text row (no prompt, every token trained), unlabelled, then labelled.
        let ids: [Int32] = [5, 9, 14, 20, 21, 0]
        var batch = Batch(batch: 1, length: 6, ids: ids, labels: [5, 9, 14, 20, 21, -100], rowLengths: [5], promptLengths: [0],
                          safetyClasses: [nil])
        #expect(objective.prepared(batch, maxPositions: model.config.maxPositions).promptLengths == [5])
        // Unlabelled: no token reads CLS, so the LM loss leaves the CLS embedding row alone.
        let tape = Tape()
        let (lm, _) = objective.lossAndMetrics(tape: tape, model: model, batch: batch)
        tape.backward(lm)
        let embedding = try #require(model.namedParameters.first { $0.0.hasSuffix("embed_tokens.weight") }?.1)
        let d = model.config.hiddenSize, cls = signal.clsTokenId
        let clsGrad = try #require(embedding.grad).scalars[(cls * d)..<((cls + 1) * d)]
        #expect(clsGrad.allSatisfy { $0 == 0 })
        // Labelled: CLS reads the text, so the class depends on it.
        batch.safetyClasses = [1]
        let (_, a) = objective.lossAndMetrics(tape: Tape(), model: model, batch: batch)
        batch.ids = [5, 30, 31, 20, 21, 0]
        let (_, b) = objective.lossAndMetrics(tape: Tape(), model: model, batch: batch)
        #expect(abs(a["cls_loss"]! - b["cls_loss"]!) > 1e-6)
    }

    @Test(arguments: [false, true])
    func objectiveGradientsMatchFiniteDifferences(answerProbes: Bool) throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, _, signal) = try SafetySignal.adding(to: try Tiny.model(.llama, vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 5)
        // A larger head so the classification term matters in the gradient.
        for i in 0..<signal.weight.value.count { signal.weight.value.data[i] *= 20 }
        let objective = SignalObjective(signal: signal, lambda: 0.7, answerProbes: answerProbes)
        let batch = Self.batch(tokenizer)
        let tape = Tape()
        let (loss, _) = objective.lossAndMetrics(tape: tape, model: model, batch: batch)
        tape.backward(loss)
        func value() -> Double {
            let t = Tape()
            return Double(t.withoutGrad { objective.lossAndMetrics(tape: t, model: model, batch: batch).loss.value[flat: 0] })
        }
        // Steps suit each parameter's scale: the CLS row starts as the mean embedding (tiny
        // entries), where RMSNorm makes the loss sharply curved.
        let params: [(Variable, Int, Float)] = [
            (signal.weight, 3, 1e-2), (signal.weight, 16 + 7, 1e-2), (signal.bias, 1, 1e-2),
            (model.namedParameters.first { $0.0 == "model.layers.0.self_attn.q_proj.weight" }!.1, 5, 1e-2),
            (model.namedParameters.first { $0.0 == "model.layers.1.mlp.down_proj.weight" }!.1, 11, 1e-2),
            (model.tokenEmbedding.table, 9 * 16 + 2, 1e-3),
            (model.tokenEmbedding.table, signal.clsTokenId * 16 + 2, 5e-5),
        ]
        for (v, i, h) in params {
            let analytic = Double(v.grad?.data[i] ?? 0)
            let x = v.value.data[i]
            v.value.data[i] = x + h
            let up = value()
            v.value.data[i] = x - h
            let down = value()
            v.value.data[i] = x
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - analytic) <= 2e-3 + 0.05 * abs(numeric), "\(v.name)[\(i)]: \(numeric) vs \(analytic)")
        }
        // The CLS embedding row gets a gradient: the classification reaches the model.
        #expect(abs(model.tokenEmbedding.table.grad!.data[signal.clsTokenId * 16 + 2]) > 0)
    }

    // MARK: Adding the signal, storing it

    @Test(arguments: [ModelConfig.Family.gpt2, .llama])
    func addingTheSignalKeepsOldLogits(family: ModelConfig.Family) throws {
        let tokenizer = try Tiny.tokenizer()
        let base = try Tiny.model(family, vocab: tokenizer.vocabSize)
        let (model, grown, signal) = try SafetySignal.adding(to: base, tokenizer: tokenizer)
        #expect(signal.clsTokenId == tokenizer.vocabSize)
        #expect(grown.id(of: "[CLS]") == signal.clsTokenId)
        #expect(model.config.vocabSize == tokenizer.vocabSize + 1)
        let ids: [Int32] = [3, 40, 41, 7, 9]
        let old = base.forward(tape: Tape(), ids: ids, batch: 1, length: 5).value.scalars
        let new = model.forward(tape: Tape(), ids: ids, batch: 1, length: 5).value.scalars
        let v = tokenizer.vocabSize
        var diff: Float = 0
        for t in 0..<5 { for j in 0..<v { diff = max(diff, abs(old[t * v + j] - new[t * (v + 1) + j])) } }
        #expect(diff < 1e-5)
        // Adding again reuses the token.
        let again = try SafetySignal.adding(to: model, tokenizer: grown)
        #expect(again.signal.clsTokenId == signal.clsTokenId && again.model.config.vocabSize == model.config.vocabSize)
    }

    @Test func signalSurvivesACheckpointRoundTrip() throws {
        let tokenizer = try Tiny.tokenizer()
        let (model, grown, signal) = try SafetySignal.adding(to: try Tiny.model(vocab: tokenizer.vocabSize), tokenizer: tokenizer,
                                                               pattern: .pretrain, seed: 9)
        signal.bias.value.data[0] = -1.5
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-signal-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("model.h5")
        try Checkpoint(config: model.config, weights: model.huggingFaceWeights(), tokenizerJSON: grown.jsonData(),
                       signal: signal.tensorGroup).write(to: url)
        let read = try Checkpoint.read(from: url)
        let restored = try SafetySignal(group: try #require(read.signal))
        #expect(restored.clsToken == "[CLS]" && restored.clsTokenId == signal.clsTokenId && restored.pattern == .pretrain)
        #expect(restored.weight.value.scalars == signal.weight.value.scalars)
        #expect(restored.bias.value.scalars == signal.bias.value.scalars)
        let tok = try Tokenizer(data: try #require(read.tokenizerJSON), source: "round trip")
        #expect(tok.id(of: "[CLS]") == signal.clsTokenId)

        // The objective stores and restores the same section.
        let objective = SignalObjective(signal: SafetySignal(clsToken: "[CLS]", clsTokenId: signal.clsTokenId, hiddenSize: 16), lambda: 0.1)
        try objective.restore(from: try #require(read.signal))
        #expect(objective.signal.bias.value.scalars == signal.bias.value.scalars)
        #expect(try SafetySignal(group: try #require(objective.checkpointSection)).weight.value.scalars == signal.weight.value.scalars)

        var broken = signal.tensorGroup
        broken.tensors["head.weight"] = Tensor(zeros: [3, 16])
        #expect(throws: SignalError.invalidGroup(key: "head.weight", reason: "is missing or not of shape [2, d]")) {
            try SafetySignal(group: broken)
        }
        broken = signal.tensorGroup
        broken.attributes["cls_token_id"] = .string("x")
        #expect(throws: SignalError.invalidGroup(key: "cls_token_id", reason: "is missing or not a valid token id")) {
            try SafetySignal(group: broken)
        }
    }
}

/// The class-weighted classification loss (`safety.signal.malicious_weight`).
@Suite struct SignalClassWeightTests {
    @Test func maliciousRowsCountTheirWeight() throws {
        let tokenizer = try Tiny.tokenizer()
        let (_, _, signal) = try SafetySignal.adding(to: try Tiny.model(vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 4)
        let z: [Float] = [0.3, -1.2, 2.0, 0.5, -0.7, 0.1, 1.5, 1.5]
        let targets: [Int32] = [1, 0, 0, -100]
        func ce(_ r: Int) -> Float {
            let a = z[2 * r], b = z[2 * r + 1], m = max(a, b)
            return m + log(exp(a - m) + exp(b - m)) - z[2 * r + Int(targets[r])]
        }
        for weight: Float in [1, 3] {
            let tape = Tape()
            let logits = Variable(Tensor(shape: [4, 2], scalars: z), requiresGrad: true)
            let loss = SignalObjective(signal: signal, lambda: 1, maliciousWeight: weight).classLoss(tape: tape, logits: logits, targets: targets)
            let expected = (weight * ce(0) + ce(1) + ce(2)) / (weight + 2)
            #expect(abs(loss.value[flat: 0] - expected) < 1e-5, "weight \(weight): \(loss.value[flat: 0]) vs \(expected)")
            tape.backward(loss)
            // d loss / d z of the malicious row scales with its weight.
            let g = try #require(logits.grad)
            let p1 = 1 / (1 + exp(z[0] - z[1]))
            #expect(abs(g.data[1] - weight * (p1 - 1) / (weight + 2)) < 1e-5)
            #expect(g.data[6] == 0 && g.data[7] == 0)
        }
    }
}
