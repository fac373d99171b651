import Foundation
import Training

/// BD-VAX's settings at the end of a training run (a recipe's `safety.gate`).
public struct GateSettings: Sendable, Equatable {
    /// What happens when the gate rejects the checkpoint.
    public enum OnReject: String, Sendable, CaseIterable {
        /// Keep the checkpoint aside, marked rejected.
        case quarantine
        /// Neutralise the signature channels and repair fluency.
        case purify
        /// Fail the run.
        case fail
    }

    /// Where the synthetic variants are fine-tuned from.
    public enum VariantsFrom: String, Sendable, CaseIterable {
        /// The checkpoint under test (the paper's setting).
        case checkpoint
        /// Its trusted parent (synthetic backdoors then start where the real one did).
        case parent
    }

    /// Whether the gate runs.
    public var enabled = true
    /// Reaction to a reject verdict.
    public var onReject = OnReject.quarantine
    /// Synthetic variant pairs.
    public var variants = 6
    /// Optimizer steps per variant fine-tune; nil keeps the gate's default.
    public var steps: Int?
    /// How the variants are fine-tuned (every weight, or LoRA on every projection).
    public var kind = VariantSettings.Kind.full
    /// Deciding statistic (docs/gate.md).
    public var rule = DetectionRule.share
    /// Where variants start.
    public var variantsFrom = VariantsFrom.checkpoint
    /// Fraction of channels per layer in the signature.
    public var tau = 0.08
    /// Trusted parent checkpoint, if any.
    public var reference: RecipePath?
    /// Clean data for the variants and the repair; nil means the benign training data.
    public var cleanData: RecipePath?
    /// Probe prompts for the behavioural stage (off when nil).
    public var probes: RecipePath?
    /// Clean fine-tunes of the parent that calibrate the behavioural stage.
    public var scanCalibrations = 3
    /// Where the behavioural stage keeps its calibration between runs (nil: measured every run).
    public var scanCalibrationFile: RecipePath?
    /// Whether the direction stage runs: with `directionProbes` on any run, else on
    /// full-weight runs whose base carries its safety directions.
    public var direction = true
    /// Labelled prompts for the direction stage (nil: the base's stored directions).
    public var directionProbes: RecipePath?
    /// Trusted data in the run's own mix for the direction stage's calibration (nil: the clean data).
    public var directionData: RecipePath?
    /// Clean fine-tunes of the parent that calibrate the direction stage.
    public var directionCalibrations = 4
    /// Samples each of them trains on (nil: the regime's default).
    public var directionSamples: Int?
    /// Most steps each of them takes (nil: as many as the run took). Fewer steps keep a
    /// cold calibration short, but clean fine-tunes read higher the longer they train, so
    /// a run much longer than the cap can be rejected (docs/gate.md).
    public var directionMaxSteps: Int?
    /// Where the direction stage keeps its calibration between runs (nil: measured every
    /// run): a JSON file for one calibration, or a folder (a path ending in `/`) keeping one
    /// file per parent, data and regime.
    public var directionCalibrationFile: RecipePath?

    /// The defaults.
    public init() {}
}
