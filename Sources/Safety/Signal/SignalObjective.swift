import Checkpoints
import Engine
import Models
import Training

/// The SA-ESS training loss `L = L_lm + λ · L_cls`: every row of the batch gets the CLS
/// token prepended, attention follows `SignalMask` (the signal's pattern), the LM loss is
/// the usual causal loss on the row's labels, and the classification loss is the
/// cross-entropy of the head on CLS's final hidden state against the row's safety class.
/// Rows without a class add nothing to `L_cls` (the mean runs over labelled rows); a
/// malicious row counts `maliciousWeight` times a benign one.
public final class SignalObjective: TrainingObjective {
    /// The head and CLS token.
    public let signal: SafetySignal
    /// Weight λ of the classification loss.
    public let lambda: Float
    /// Weight of a malicious row in `L_cls` relative to a benign row.
    public let maliciousWeight: Float

    /// An objective weighting the classification loss by `lambda` (`safety.signal.lambda`)
    /// and malicious rows by `maliciousWeight` (`safety.signal.malicious_weight`).
    public init(signal: SafetySignal, lambda: Float, maliciousWeight: Float = 1) {
        self.signal = signal
        self.lambda = lambda
        self.maliciousWeight = maliciousWeight
    }

    public var namedParameters: [(String, Variable)] { signal.namedParameters }

    /// The checkpoint's `/signal` section: the head with its CLS token and pattern
    /// (what `SafetySignal(group:)` and guarded decoding read back).
    public var checkpointSection: TensorGroup? { signal.tensorGroup }

    /// Loads the head's values from a `/signal` section (resume); the CLS token must match.
    public func restore(from section: TensorGroup) throws {
        let stored = try SafetySignal(group: section)
        guard stored.clsTokenId == signal.clsTokenId else {
            throw SignalError.invalidGroup(key: "cls_token_id", reason: "is \(stored.clsTokenId), the model's CLS token is \(signal.clsTokenId)")
        }
        guard stored.hiddenSize == signal.hiddenSize else { throw SignalError.widthMismatch(head: stored.hiddenSize, model: signal.hiddenSize) }
        signal.weight.value.assign(stored.weight.value)
        signal.bias.value.assign(stored.bias.value)
    }

    /// The batch with CLS prepended to every row: ids and labels `[B, T + 1]` (the last
    /// column dropped when the model's context cannot hold T + 1), CLS and the token after
    /// it labelled -100.
    ///
    /// A row with no prompt (raw text, or a packed row) has no answer in the SA-ESS sense,
    /// so the whole row counts as prompt for the mask: CLS reads it and no token reads CLS.
    /// Otherwise, under `sft`, CLS would read nothing but itself while every text token read
    /// it, and language modelling on text would reshape the pathway the guard relies on.
    public func prepared(_ batch: Batch, maxPositions: Int) -> Batch {
        let t = batch.length
        let width = min(t + 1, max(1, maxPositions))
        var ids = [Int32](repeating: 0, count: batch.batch * width)
        var labels = [Int32](repeating: -100, count: batch.batch * width)
        let cls = Int32(clamping: signal.clsTokenId)
        for b in 0..<batch.batch {
            ids[b * width] = cls
            // The row's first token stays unpredicted, as without CLS: CLS is no BOS.
            for k in 1..<max(1, width - 1) { labels[b * width + 1 + k] = batch.labels[b * t + k] }
            for k in 0..<(width - 1) { ids[b * width + 1 + k] = batch.ids[b * t + k] }
        }
        var out = batch
        out.length = width
        out.ids = ids
        out.labels = labels
        out.rowLengths = batch.rowLengths.map { min($0, width - 1) }
        out.promptLengths = zip(batch.promptLengths, out.rowLengths).map { p, n in p == 0 ? n : min(p, width - 1) }
        return out
    }

    /// Examples with a language-modelling target or a safety label: a labelled prompt
    /// without an answer trains the classification alone.
    public func learns(from example: EncodedExample) -> Bool { example.trainedTokens > 0 || example.safetyClass != nil }

    public func loss(tape: Tape, model: TransformerModel, batch: Batch) -> (loss: Variable, metrics: [String: Float]) {
        let b = prepared(batch, maxPositions: model.config.maxPositions)
        let mask = SignalMask.build(pattern: signal.pattern, batch: b.batch, length: b.length,
                                    promptLengths: b.promptLengths, rowLengths: b.rowLengths)
        let hidden = model.hiddenStates(tape: tape, ids: b.ids, batch: b.batch, length: b.length, mask: mask)
        let logits = model.logits(tape: tape, hidden: hidden)
        let lm = tape.crossEntropy(logits: logits, targets: TransformerModel.shiftedTargets(b.labels, batch: b.batch, length: b.length))
        var metrics: [String: Float] = ["lm_loss": lm.value[flat: 0]]
        let targets = batch.safetyClasses.prefix(b.batch).map { c -> Int32 in
            guard let c, c == 0 || c == 1 else { return -100 }
            return c
        } + [Int32](repeating: -100, count: max(0, b.batch - batch.safetyClasses.count))
        let labelled = targets.filter { $0 != -100 }.count
        guard labelled > 0 else {
            metrics["cls_loss"] = 0
            return (lm, metrics)
        }
        let clsHidden = tape.gatherRows(hidden, rows: (0..<b.batch).map { $0 * b.length })
        let clsLogits = signal.logits(tape: tape, hidden: clsHidden)
        let cls = classLoss(tape: tape, logits: clsLogits, targets: targets)
        var correct = 0
        let z = clsLogits.value.data
        for (r, t) in targets.enumerated() where t != -100 {
            let predicted: Int32 = z[2 * r + 1] > z[2 * r] ? 1 : 0
            if predicted == t { correct += 1 }
        }
        metrics["cls_loss"] = cls.value[flat: 0]
        metrics["cls_accuracy"] = Float(correct) / Float(labelled)
        return (tape.add(lm, tape.scale(cls, lambda)), metrics)
    }

    /// Weighted mean cross-entropy: Σ w_r · CE_r / Σ w_r with w = `maliciousWeight` on
    /// malicious rows and 1 on benign ones, built from the per-class means.
    func classLoss(tape: Tape, logits: Variable, targets: [Int32]) -> Variable {
        guard maliciousWeight != 1 else { return tape.crossEntropy(logits: logits, targets: targets) }
        let malicious = targets.filter { $0 == 1 }.count, benign = targets.filter { $0 == 0 }.count
        func only(_ c: Int32) -> [Int32] { targets.map { $0 == c ? c : -100 } }
        let total = maliciousWeight * Float(malicious) + Float(benign)
        var parts: [Variable] = []
        if malicious > 0 {
            parts.append(tape.scale(tape.crossEntropy(logits: logits, targets: only(1)), maliciousWeight * Float(malicious) / total))
        }
        if benign > 0 {
            parts.append(tape.scale(tape.crossEntropy(logits: logits, targets: only(0)), Float(benign) / total))
        }
        return parts.count == 2 ? tape.add(parts[0], parts[1]) : parts[0]
    }
}
