import Foundation
import Safety
import Training

/// `safety`: the three safety methods.
public struct SafetySection: Sendable, Equatable {
    /// SSAH unit freezing and routing.
    public let ssah: SSAHSettings
    /// SA-ESS explicit safety signal.
    public let signal: SignalSettings
    /// BD-VAX gate.
    public let gate: GateSettings

    init(reading r: MappingReader, model: ModelSection) throws {
        ssah = try SSAHSettings(reading: r.section("ssah", allowed: RecipeSchema.children(of: "safety.ssah")), model: model)
        signal = try SignalSettings(reading: r.section("signal", allowed: RecipeSchema.children(of: "safety.signal")))
        gate = try GateSettings(reading: r.section("gate", allowed: RecipeSchema.children(of: "safety.gate")))
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("ssah", ssah.canonical(relativeTo: root)), ("signal", signal.canonical(relativeTo: root)),
                 ("gate", gate.canonical(relativeTo: root))])
    }
}
