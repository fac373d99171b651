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
    /// The loss of one micro-batch (a scalar), plus named scalar metrics to log.
    func loss(tape: Tape, model: TransformerModel, batch: Batch) -> (loss: Variable, metrics: [String: Float])
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

/// The causal language-modelling loss: mean cross-entropy of each trained token given
/// the tokens before it.
public final class LanguageModelObjective: TrainingObjective {
    public init() {}

    public var namedParameters: [(String, Variable)] { [] }

    public func loss(tape: Tape, model: TransformerModel, batch: Batch) -> (loss: Variable, metrics: [String: Float]) {
        let packed = batch.attention
        let loss = model.loss(tape: tape, ids: batch.ids, labels: batch.labels, batch: batch.batch, length: batch.length,
                              mask: packed?.mask, positions: packed?.positions)
        return (loss, ["lm_loss": loss.value[flat: 0]])
    }
}
