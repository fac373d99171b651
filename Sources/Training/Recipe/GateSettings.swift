import Foundation

/// `safety.gate`: the BD-VAX backdoor check on the trained checkpoint.
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

    /// The statistic that decides (the Safety module's `DetectionRule`; see docs/gate.md).
    public enum Rule: String, Sendable, CaseIterable {
        case share, alignment, residual
    }

    /// Where the synthetic variants are fine-tuned from.
    public enum VariantsFrom: String, Sendable, CaseIterable {
        /// The checkpoint under test (the paper's setting).
        case checkpoint
        /// Its trusted parent (synthetic backdoors then start where the real one did).
        case parent
    }

    /// Whether the gate runs.
    public let enabled: Bool
    /// Reaction to a reject verdict.
    public let onReject: OnReject
    /// Synthetic variant pairs.
    public let variants: Int
    /// Optimizer steps per variant fine-tune; nil keeps the gate's default.
    public let steps: Int?
    /// Deciding statistic.
    public let rule: Rule
    /// Where variants start.
    public let variantsFrom: VariantsFrom
    /// Fraction of channels per layer in the signature.
    public let tau: Double
    /// Trusted parent checkpoint, if any.
    public let reference: RecipePath?
    /// Clean data for the variants and the repair; nil means the benign training data.
    public let cleanData: RecipePath?
    /// Probe prompts for the behavioural stage (off when nil).
    public let probes: RecipePath?
    /// Clean fine-tunes of the parent that calibrate the behavioural stage.
    public let scanCalibrations: Int
    /// Where the behavioural stage keeps its calibration between runs (nil: measured every run).
    public let scanCalibrationFile: RecipePath?
    /// Whether the direction stage runs: with `directionProbes` on any run, else on
    /// full-weight runs whose base carries its safety directions.
    public let direction: Bool
    /// Labelled prompts for the direction stage (nil: the base's stored directions).
    public let directionProbes: RecipePath?
    /// Trusted data in the run's own mix for the direction stage's calibration (nil: the clean data).
    public let directionData: RecipePath?
    /// Clean fine-tunes of the parent that calibrate the direction stage.
    public let directionCalibrations: Int
    /// Where the direction stage keeps its calibration between runs (nil: measured every run).
    public let directionCalibrationFile: RecipePath?

    init(reading r: MappingReader) throws {
        enabled = try r.bool("enabled", default: true)
        onReject = try r.choice("on_reject", default: OnReject.quarantine)
        variants = try r.int("variants", default: 6, range: .closed(1, 64))
        steps = try r.optionalInt("steps", range: .closed(1, 100_000))
        rule = try r.choice("rule", default: Rule.share)
        variantsFrom = try r.choice("variants_from", default: VariantsFrom.checkpoint)
        tau = try r.double("tau", default: 0.08, range: .fraction)
        reference = try r.path("reference")
        cleanData = try r.path("clean_data")
        probes = try r.path("probes")
        scanCalibrations = try r.int("scan_calibrations", default: 3, range: .closed(2, 16))
        scanCalibrationFile = try r.path("scan_calibration")
        direction = try r.bool("direction", default: true)
        directionProbes = try r.path("direction_probes")
        if !direction, directionProbes != nil {
            throw RecipeError.conflict(r.location(of: "direction_probes"), keyPath: r.full("direction_probes"),
                                       message: "measures directions for the direction stage, which direction: false turns off")
        }
        directionData = try r.path("direction_data")
        directionCalibrations = try r.int("direction_calibrations", default: 4, range: .closed(2, 16))
        directionCalibrationFile = try r.path("direction_calibration")
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("enabled", .bool(enabled)), ("on_reject", .string(onReject.rawValue)), ("variants", .int(variants)),
                 ("steps", steps.map { .int($0) } ?? .null), ("rule", .string(rule.rawValue)), ("variants_from", .string(variantsFrom.rawValue)),
                 ("tau", .double(tau)), ("reference", reference.map { .string($0.relative(to: root)) } ?? .null),
                 ("clean_data", cleanData.map { .string($0.relative(to: root)) } ?? .null),
                 ("probes", probes.map { .string($0.relative(to: root)) } ?? .null), ("scan_calibrations", .int(scanCalibrations)),
                 ("scan_calibration", scanCalibrationFile.map { .string($0.relative(to: root)) } ?? .null),
                 ("direction", .bool(direction)), ("direction_probes", directionProbes.map { .string($0.relative(to: root)) } ?? .null),
                 ("direction_data", directionData.map { .string($0.relative(to: root)) } ?? .null),
                 ("direction_calibrations", .int(directionCalibrations)),
                 ("direction_calibration", directionCalibrationFile.map { .string($0.relative(to: root)) } ?? .null)])
    }
}
