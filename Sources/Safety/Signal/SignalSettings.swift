import Foundation
import Training

/// SA-ESS's settings (a recipe's `safety.signal`): an explicit benign/malicious
/// classification on a [CLS] token.
public struct SignalSettings: Sendable, Equatable {
    /// Whether the signal head and loss are added.
    public var enabled = false
    /// Weight of the classification loss.
    public var lambda = 0.1
    /// Weight of a malicious example's classification loss relative to a benign one's
    /// (malicious examples are rare in most data; this keeps the head from ignoring them).
    public var maliciousWeight = 1.0
    /// Attention pattern.
    public var pattern = SignalPattern.sft
    /// The special token.
    public var clsToken = "[CLS]"
    /// Whether the guard's answer probes are trained as well: a CLS reading windows of
    /// each labelled answer, classified with the row's label.
    public var answerProbes = false
    /// Harmless prompts (JSONL) the guard's threshold is calibrated on after training
    /// (nil: the trained head keeps no calibration and the guard uses 0.5).
    public var calibration: RecipePath?
    /// The over-refusal that calibration may spend.
    public var overRefusalBudget = GuardCalibration.defaultBudget

    /// The defaults: off.
    public init() {}
}
