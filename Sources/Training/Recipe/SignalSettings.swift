import Foundation

/// `safety.signal`: SA-ESS, an explicit benign/malicious classification on a [CLS] token.
public struct SignalSettings: Sendable, Equatable {
    /// Which positions the CLS token sees and is seen by.
    public enum Pattern: String, Sendable, CaseIterable {
        /// CLS attends to the prompt; answer tokens attend to CLS.
        case sft
        /// CLS attends to everything; nothing attends to CLS.
        case pretrain
    }

    /// Whether the signal head and loss are added.
    public let enabled: Bool
    /// Weight of the classification loss.
    public let lambda: Double
    /// Weight of a malicious example's classification loss relative to a benign one's
    /// (malicious examples are rare in most data; this keeps the head from ignoring them).
    public let maliciousWeight: Double
    /// Attention pattern.
    public let pattern: Pattern
    /// The special token.
    public let clsToken: String
    /// Whether the guard's answer probes are trained as well: a CLS reading windows of
    /// each labelled answer, classified with the row's label.
    public let answerProbes: Bool
    /// Harmless prompts (JSONL) the guard's threshold is calibrated on after training
    /// (nil: the trained head keeps no calibration and the guard uses 0.5).
    public let calibration: RecipePath?
    /// The over-refusal that calibration may spend; its default is `GuardCalibration.defaultBudget`
    /// (a test keeps the two equal: this module cannot see Safety).
    public let overRefusalBudget: Double

    init(reading r: MappingReader) throws {
        enabled = try r.bool("enabled", default: false)
        lambda = try r.double("lambda", default: 0.1, range: ValueRange(lower: 0, lowerInclusive: false, upper: 10))
        maliciousWeight = try r.double("malicious_weight", default: 1, range: ValueRange(lower: 0, lowerInclusive: false, upper: 1000))
        pattern = try r.choice("pattern", default: Pattern.sft)
        clsToken = try r.string("cls_token", default: "[CLS]")
        answerProbes = try r.bool("answer_probes", default: false)
        calibration = try r.path("calibration")
        overRefusalBudget = try r.double("over_refusal_budget", default: 0.05,
                                         range: ValueRange(lower: 0, upper: 1, upperInclusive: false))
        if answerProbes, !enabled {
            throw RecipeError.conflict(r.location(of: "answer_probes"), keyPath: r.full("answer_probes"),
                                       message: "trains the guard of a safety signal; set safety.signal.enabled, or drop it (--set safety.signal.answer_probes=false)")
        }
        if calibration != nil, !enabled {
            throw RecipeError.conflict(r.location(of: "calibration"), keyPath: r.full("calibration"),
                                       message: "calibrates the guard of a safety signal; set safety.signal.enabled, or drop it (--set safety.signal.calibration=null)")
        }
    }

    // The calibration keys and answer_probes appear only when set, so recipes written
    // before them keep their canonical text.
    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("enabled", .bool(enabled)), ("lambda", .double(lambda)), ("malicious_weight", .double(maliciousWeight)),
                 ("pattern", .string(pattern.rawValue)), ("cls_token", .string(clsToken))]
                + (answerProbes ? [("answer_probes", .bool(true))] : [])
                + (calibration.map { [("calibration", .string($0.relative(to: root))),
                                      ("over_refusal_budget", .double(overRefusalBudget))] } ?? []))
    }
}
