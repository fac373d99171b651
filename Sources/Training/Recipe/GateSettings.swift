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

    /// Whether the gate runs.
    public let enabled: Bool
    /// Reaction to a reject verdict.
    public let onReject: OnReject
    /// Synthetic variant pairs.
    public let variants: Int
    /// Fraction of channels per layer in the signature.
    public let tau: Double
    /// Trusted parent checkpoint, if any.
    public let reference: RecipePath?
    /// Clean data for the variants and the repair; nil means the benign training data.
    public let cleanData: RecipePath?

    init(reading r: MappingReader) throws {
        enabled = try r.bool("enabled", default: true)
        onReject = try r.choice("on_reject", default: OnReject.quarantine)
        variants = try r.int("variants", default: 6, range: .closed(1, 64))
        tau = try r.double("tau", default: 0.08, range: .fraction)
        reference = try r.path("reference")
        cleanData = try r.path("clean_data")
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("enabled", .bool(enabled)), ("on_reject", .string(onReject.rawValue)), ("variants", .int(variants)),
                 ("tau", .double(tau)), ("reference", reference.map { .string($0.relative(to: root)) } ?? .null),
                 ("clean_data", cleanData.map { .string($0.relative(to: root)) } ?? .null)])
    }
}
