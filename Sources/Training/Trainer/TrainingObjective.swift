import Checkpoints
import Engine
import Models

/// What a training step minimises. `LanguageModelObjective` is the plain causal-LM loss;
/// SA-ESS supplies an objective that adds its safety-classification term.
///
/// An objective may own parameters (a classification head); the trainer optimises them
/// with the model's and saves them with the checkpoint.
public protocol TrainingObjective: AnyObject {
    /// Trainable parameters the objective owns, by name (empty for the plain LM loss).
    var namedParameters: [(String, Variable)] { get }
    /// The loss of one micro-batch as its terms, plus metrics to log.
    func loss(tape: Tape, model: TransformerModel, batch: Batch) -> ObjectiveLoss
    /// The objective's parameters as the checkpoint's `/signal` section; nil when it has none.
    var checkpointSection: TensorGroup? { get }
    /// Loads parameter values back from a section written by `checkpointSection` (resume).
    func restore(from section: TensorGroup) throws
    /// Whether a training example gives this objective anything to learn.
    func learns(from example: EncodedExample) -> Bool
}

extension TrainingObjective {
    /// Parameters stored under their own names.
    public var checkpointSection: TensorGroup? {
        let named = namedParameters
        if named.isEmpty { return nil }
        return TensorGroup(tensors: Dictionary(named.map { ($0.0, $0.1.value.copy()) }, uniquingKeysWith: { a, _ in a }))
    }

    /// Examples with at least one language-modelling target.
    public func learns(from example: EncodedExample) -> Bool { example.trainedTokens > 0 }

    public func restore(from section: TensorGroup) throws {
        for (name, v) in namedParameters {
            guard let t = section.tensors[name], t.count == v.value.count else { throw TrainerError.missingObjectiveState(name: name) }
            v.value.assign(t)
        }
    }
}

/// A mean over `count` elements (target tokens, labelled rows). Keeping the count beside
/// the mean is what lets processes that each hold part of a batch add up the mean of the
/// whole batch: Σ count · mean / Σ count.
public struct Mean: Sendable, Equatable {
    public var value: Float
    public var count: Float
    public init(_ value: Float, count: Float) {
        self.value = value
        self.count = count
    }
}

/// One term of a loss: a mean over `count` elements, entering the loss as `weight · mean`.
public struct LossTerm {
    /// The name it is logged under (`lm_loss`).
    public var name: String
    /// The scalar mean; nil when the batch has nothing for this term (`count` 0).
    public var mean: Variable?
    public var count: Float
    public var weight: Float

    public init(_ name: String, mean: Variable?, count: Float, weight: Float = 1) {
        self.name = name
        self.mean = count > 0 ? mean : nil
        self.count = count
        self.weight = weight
    }
}

/// An objective's loss on one micro-batch. Every batch yields the same terms and metrics
/// in the same order (a term the batch has nothing for has count 0), so that processes
/// holding different rows of one batch can combine them element by element.
public struct ObjectiveLoss {
    public var terms: [LossTerm]
    /// Metrics logged beside the terms' means (accuracies).
    public var metrics: [(String, Mean)]

    public init(terms: [LossTerm], metrics: [(String, Mean)] = []) {
        self.terms = terms
        self.metrics = metrics
    }

    /// The loss of the batch held whole: Σ weight · mean over the terms it has; nil when
    /// it has none.
    public func total(tape: Tape) -> Variable? {
        combined(tape: tape, factors: terms.map(\.weight))
    }

    /// This share's part of the loss of a batch split across processes, times `scale`:
    /// each term weighted by the fraction of the whole batch's count (`wholeCounts`, the
    /// terms' counts in order) that this share holds. Summed over the shares, the
    /// gradients are those of the whole batch's `total`.
    public func share(ofWhole wholeCounts: [Float], tape: Tape, scale: Float = 1) -> Variable? {
        combined(tape: tape, factors: zip(terms, wholeCounts).map { t, n in n > 0 ? t.weight * (t.count / n) * scale : 0 })
    }

    /// Σ factor · mean over the terms that have a mean (a factor of 1 adds the mean as it
    /// is); nil when none has one.
    private func combined(tape: Tape, factors: [Float]) -> Variable? {
        var sum: Variable?
        for (term, f) in zip(terms, factors) {
            guard let mean = term.mean else { continue }
            let part = f == 1 ? mean : tape.scale(mean, f)
            sum = sum.map { tape.add($0, part) } ?? part
        }
        return sum
    }

    /// Count and count · mean of every term, then every metric: what the processes that
    /// share a batch add up (`whole(from:)` reads the sum).
    public var sums: [Double] {
        let means = terms.map { Mean($0.mean?.value[flat: 0] ?? 0, count: $0.count) } + metrics.map(\.1)
        return means.flatMap { [Double($0.count), Double($0.count) * Double($0.value)] }
    }

    /// The whole batch's numbers from the processes' `sums`, added up: its loss, its
    /// terms' means and metrics as `logged` gives them, and each term's count.
    public func whole(from sums: [Double]) -> (loss: Double, logged: [(String, Mean)], termCounts: [Float]) {
        let names = terms.map(\.name) + metrics.map(\.0)
        let means = names.indices.map { i in
            Mean(sums[2 * i] > 0 ? Float(sums[2 * i + 1] / sums[2 * i]) : 0, count: Float(sums[2 * i]))
        }
        var loss = 0.0
        for (term, mean) in zip(terms, means) where mean.count > 0 { loss += Double(term.weight) * Double(mean.value) }
        let logged = zip(names, means).enumerated().filter { $0.offset < terms.count || $0.element.1.count > 0 }.map(\.element)
        return (loss, logged, means.prefix(terms.count).map(\.count))
    }

    /// The terms' means and the metrics, by name: what one process logs for a batch it
    /// holds whole (a term with count 0 as 0, a metric with count 0 left out).
    public var logged: [(String, Mean)] {
        terms.map { ($0.name, Mean($0.mean?.value[flat: 0] ?? 0, count: $0.count)) } + metrics.filter { $0.1.count > 0 }
    }
}

/// The causal language-modelling loss: mean cross-entropy of each trained token given
/// the tokens before it.
public final class LanguageModelObjective: TrainingObjective {
    public init() {}

    public var namedParameters: [(String, Variable)] { [] }

    public func loss(tape: Tape, model: TransformerModel, batch: Batch) -> ObjectiveLoss {
        let packed = batch.attention
        let loss = model.loss(tape: tape, ids: batch.ids, labels: batch.labels, batch: batch.batch, length: batch.length,
                              mask: packed?.mask, positions: packed?.positions)
        let targets = TransformerModel.targetCount(batch.labels, batch: batch.batch, length: batch.length)
        return ObjectiveLoss(terms: [LossTerm("lm_loss", mean: loss, count: Float(targets))])
    }
}
