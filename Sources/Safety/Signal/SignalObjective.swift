import Checkpoints
import Engine
import Models
import Training

/// The SA-ESS training loss `L = L_lm + λ · L_cls`: every row of the batch gets the CLS
/// token prepended, attention follows `SignalMask` (the signal's pattern), the LM loss is
/// the usual causal loss on the row's labels, and the classification loss is the
/// cross-entropy of the head on CLS's final hidden state against the row's safety class.
/// Rows without a class add nothing to `L_cls` (the mean runs over labelled rows).
public final class SignalObjective: TrainingObjective {
    /// The head and CLS token.
    public let signal: SafetySignal
    /// Weight λ of the classification loss.
    public let lambda: Float

    /// An objective weighting the classification loss by `lambda` (`safety.signal.lambda`).
    public init(signal: SafetySignal, lambda: Float) {
        self.signal = signal
        self.lambda = lambda
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
    /// column dropped when the model's context cannot hold T + 1), CLS labelled -100.
    public func prepared(_ batch: Batch, maxPositions: Int) -> Batch {
        let t = batch.length
        let width = min(t + 1, max(1, maxPositions))
        var ids = [Int32](repeating: 0, count: batch.batch * width)
        var labels = [Int32](repeating: -100, count: batch.batch * width)
        let cls = Int32(clamping: signal.clsTokenId)
        for b in 0..<batch.batch {
            ids[b * width] = cls
            for k in 0..<(width - 1) {
                ids[b * width + 1 + k] = batch.ids[b * t + k]
                labels[b * width + 1 + k] = batch.labels[b * t + k]
            }
        }
        var out = batch
        out.length = width
        out.ids = ids
        out.labels = labels
        out.rowLengths = batch.rowLengths.map { min($0, width - 1) }
        out.promptLengths = batch.promptLengths.map { min($0, width - 1) }
        return out
    }

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
        let cls = tape.crossEntropy(logits: clsLogits, targets: targets)
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
}
