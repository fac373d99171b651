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
///
/// With `answerProbes`, the guard's answer probes are trained too: `L = L_lm + λ · (L_cls +
/// L_probe)`. Guarded decoding re-classifies a growing answer with a CLS at position 0 that
/// reads only a window of the answer (`GuardedDecoder`); without this term the head is
/// trained on CLS reading the query only, and what it says about answer windows is left to
/// chance. Each labelled row with an answer gets one probe column per window the default
/// guard checks while an answer is benign (after s answer tokens, for every step s of
/// `GuardOptions`' schedule, the latest r2), appended after the row's tokens: CLS id,
/// position 0, reading itself and its window, read by nothing, classified with the row's class.
public final class SignalObjective: TrainingObjective {
    /// The head and CLS token.
    public let signal: SafetySignal
    /// Weight λ of the classification loss.
    public let lambda: Float
    /// Weight of a malicious row in `L_cls` relative to a benign row.
    public let maliciousWeight: Float
    /// Whether the answer probes are trained (`L_probe`).
    public let answerProbes: Bool
    /// The guard whose answer windows the probes mirror.
    static let probedGuard = GuardOptions()

    /// An objective weighting the classification loss by `lambda` (`safety.signal.lambda`),
    /// malicious rows by `maliciousWeight` (`safety.signal.malicious_weight`), and training
    /// the answer probes when `answerProbes` (`safety.signal.answer_probes`).
    public init(signal: SafetySignal, lambda: Float, maliciousWeight: Float = 1, answerProbes: Bool = false) {
        self.signal = signal
        self.lambda = lambda
        self.maliciousWeight = maliciousWeight
        self.answerProbes = answerProbes
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

    /// The probe windows of each row of a prepared batch `b` (columns of `b`, CLS at 0):
    /// none for unlabelled rows or rows without an answer, else one per check of
    /// `probedGuard` after s = 1…(answer length) answer tokens, each over the latest r2.
    func probeWindows(_ b: Batch, classes: [Int32]) -> [[Range<Int>]] {
        guard answerProbes else { return Array(repeating: [], count: b.batch) }
        let schedule = Self.probedGuard.schedule, r2 = max(1, Self.probedGuard.r2)
        return (0..<b.batch).map { r in
            guard classes[r] != -100 else { return [] }
            let answerStart = 1 + b.promptLengths[r], answer = b.rowLengths[r] - b.promptLengths[r]
            guard answer > 0 else { return [] }
            return (1...answer).filter(schedule.isCheck).map { s in (answerStart + max(0, s - r2))..<(answerStart + s) }
        }
    }

    /// One forward pass over a batch in the signal's layout, probe columns included.
    struct Forward {
        /// Hidden states `[B, width, d]`, what the LM head and the signal head read.
        var hidden: Variable
        /// Columns per row: the prepared row (CLS first), then the probe columns.
        var width: Int
        /// Columns of the prepared row; probe k of a row sits at column `length + k`.
        var length: Int
        /// Each row's probe windows (columns it reads besides itself).
        var windows: [[Range<Int>]]
        /// Each row's class, -100 when unlabelled.
        var targets: [Int32]
        /// `[B · width]` unshifted LM targets (-100 on CLS, probes and untrained tokens).
        var labels: [Int32]
    }

    /// Each row's class as a classification target, -100 when unlabelled.
    func classTargets(_ batch: Batch) -> [Int32] {
        (0..<batch.batch).map { r -> Int32 in
            guard r < batch.safetyClasses.count, let c = batch.safetyClasses[r], c == 0 || c == 1 else { return -100 }
            return c
        }
    }

    /// The forward pass of `loss`: CLS prepended, probe columns appended (CLS id, position 0).
    func forward(tape: Tape, model: TransformerModel, batch: Batch) -> Forward {
        let b = prepared(batch, maxPositions: model.config.maxPositions)
        let targets = classTargets(batch)
        let windows = probeWindows(b, classes: targets)
        // A process's share of a batch takes the whole batch's probe columns, so that its
        // rows are laid out (and draw dropout) as in the whole.
        let probes = batch.wholeLayout.map { whole in
            probeWindows(prepared(whole, maxPositions: model.config.maxPositions), classes: classTargets(whole)).map(\.count).max() ?? 0
        } ?? windows.map(\.count).max() ?? 0
        let width = b.length + probes
        var ids = b.ids, labels = b.labels, positions: [Int32]? = nil
        if probes > 0 {
            let cls = Int32(clamping: signal.clsTokenId)
            ids = []
            labels = []
            ids.reserveCapacity(b.batch * width)
            labels.reserveCapacity(b.batch * width)
            for r in 0..<b.batch {
                ids.append(contentsOf: b.ids[(r * b.length)..<((r + 1) * b.length)])
                ids.append(contentsOf: repeatElement(cls, count: probes))
                labels.append(contentsOf: b.labels[(r * b.length)..<((r + 1) * b.length)])
                labels.append(contentsOf: repeatElement(Int32(-100), count: probes))
            }
            let row = (0..<b.length).map(Int32.init) + [Int32](repeating: 0, count: probes)
            positions = Array((0..<b.batch).map { _ in row }.joined())
        }
        let mask = SignalMask.build(pattern: signal.pattern, batch: b.batch, length: b.length,
                                    promptLengths: b.promptLengths, rowLengths: b.rowLengths, probes: windows, probeColumns: probes)
        let hidden = model.hiddenStates(tape: tape, ids: ids, batch: b.batch, length: width, mask: mask, positions: positions)
        return Forward(hidden: hidden, width: width, length: b.length, windows: windows, targets: targets, labels: labels)
    }

    public func loss(tape: Tape, model: TransformerModel, batch: Batch) -> ObjectiveLoss {
        let f = forward(tape: tape, model: model, batch: batch)
        let rows = f.targets.count
        let shifted = TransformerModel.shiftedTargets(f.labels, batch: rows, length: f.width)
        let lm = model.languageModelLoss(tape: tape, hidden: f.hidden, targets: shifted)
        var terms = [LossTerm("lm_loss", mean: lm, count: Float(shifted.count { $0 != -100 }))]
        var metrics: [(String, Mean)] = []
        func classify(_ name: String, rows: [Int], targets: [Int32]) {
            let labelled = targets.count { $0 != -100 }
            guard labelled > 0 else {
                terms.append(LossTerm("\(name)_loss", mean: nil, count: 0, weight: lambda))
                metrics.append(("\(name)_accuracy", Mean(0, count: 0)))
                return
            }
            let (loss, accuracy) = classification(tape: tape, hidden: f.hidden, rows: rows, targets: targets)
            terms.append(LossTerm("\(name)_loss", mean: loss, count: classWeight(targets), weight: lambda))
            metrics.append(("\(name)_accuracy", Mean(accuracy, count: Float(labelled))))
        }
        classify("cls", rows: (0..<rows).map { $0 * f.width }, targets: f.targets)
        if answerProbes {
            var probeRows: [Int] = [], probeTargets: [Int32] = []
            for (r, w) in f.windows.enumerated() {
                for k in w.indices {
                    probeRows.append(r * f.width + f.length + k)
                    probeTargets.append(f.targets[r])
                }
            }
            classify("probe", rows: probeRows, targets: probeTargets)
        }
        return ObjectiveLoss(terms: terms, metrics: metrics)
    }

    /// The head on the hidden states at flat positions `rows` of `hidden` against `targets`:
    /// the weighted class loss and the accuracy over labelled entries.
    private func classification(tape: Tape, hidden: Variable, rows: [Int], targets: [Int32]) -> (loss: Variable, accuracy: Float) {
        let logits = signal.logits(tape: tape, hidden: tape.gatherRows(hidden, rows: rows))
        var correct = 0, labelled = 0
        let z = logits.value.data
        for (r, t) in targets.enumerated() where t != -100 {
            labelled += 1
            let predicted: Int32 = z[2 * r + 1] > z[2 * r] ? 1 : 0
            if predicted == t { correct += 1 }
        }
        return (classLoss(tape: tape, logits: logits, targets: targets), Float(correct) / Float(max(1, labelled)))
    }

    /// The denominator of `classLoss` over `targets`: Σ w over labelled entries.
    func classWeight(_ targets: [Int32]) -> Float {
        maliciousWeight * Float(targets.count { $0 == 1 }) + Float(targets.count { $0 == 0 })
    }

    /// Weighted mean cross-entropy: Σ w_r · CE_r / Σ w_r with w = `maliciousWeight` on
    /// malicious rows and 1 on benign ones, built from the per-class means.
    func classLoss(tape: Tape, logits: Variable, targets: [Int32]) -> Variable {
        guard maliciousWeight != 1 else { return tape.crossEntropy(logits: logits, targets: targets) }
        let malicious = targets.count { $0 == 1 }, benign = targets.count { $0 == 0 }
        func only(_ c: Int32) -> [Int32] { targets.map { $0 == c ? c : -100 } }
        let total = classWeight(targets)
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
