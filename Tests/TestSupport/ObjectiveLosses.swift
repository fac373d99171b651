import Engine
import Models
import Training

extension TrainingObjective {
    /// The loss of `batch` held whole and the values a trainer logs for it, by name.
    public func lossAndMetrics(tape: Tape, model: TransformerModel, batch: Batch) -> (loss: Variable, metrics: [String: Float]) {
        let out = loss(tape: tape, model: model, batch: batch)
        return (out.total(tape: tape)!, Dictionary(out.logged.map { ($0.0, $0.1.value) }, uniquingKeysWith: { a, _ in a }))
    }
}
