import Foundation

/// What a training run reports as it goes; the CLI renders it as a progress bar on a
/// terminal or as JSON lines for machines.
public enum TrainingProgress: Sendable {
    /// The run is set up: what it will do.
    case started(TrainingPlan)
    /// One optimizer step finished.
    case step(StepReport)
    /// An evaluation finished at `step`.
    case evaluated(step: Int, metrics: [String: Double])
    /// A checkpoint was written.
    case saved(step: Int, url: URL)
    /// The run ended.
    case finished(TrainingSummary)
}

/// The shape of a run, known before its first step.
public struct TrainingPlan: Sendable, Codable {
    public var totalSteps: Int
    /// First step to run (above 0 when resuming).
    public var startStep: Int
    public var trainExamples: Int
    public var evalExamples: Int
    public var truncatedExamples: Int
    public var trainableParameters: Int
    public var totalParameters: Int
    public var microBatchesPerStep: Int
}

/// Metrics of one optimizer step.
public struct StepReport: Sendable, Codable {
    public var step: Int
    public var totalSteps: Int
    /// Mean loss over the step's micro-batches.
    public var loss: Double
    public var learningRate: Double
    /// Global gradient norm before clipping.
    public var gradNorm: Double
    /// Non-padding tokens in the step.
    public var tokens: Int
    public var tokensPerSecond: Double
    public var elapsedSeconds: Double
    public var etaSeconds: Double
    /// Objective-specific metrics (e.g. `cls_loss`), averaged over micro-batches.
    public var metrics: [String: Double]
}

/// How a run ended.
public struct TrainingSummary: Sendable, Codable {
    public var steps: Int
    public var finalLoss: Double
    public var evalLoss: Double?
    public var checkpoint: String
    public var seconds: Double
    public var tokensPerSecond: Double
}
