import Foundation
import Training

/// SSAH's settings (a recipe's `safety.ssah`): find the units that carry the refusal
/// decision and keep training away from them.
public struct SSAHSettings: Sendable, Equatable {
    /// Units that may not change.
    public enum Freeze: Sendable, Equatable, CustomStringConvertible {
        case none
        /// Safety-critical units.
        case scu
        /// SCU plus this fraction (0 < f < 1) of complex units, highest safety score first.
        case scuPlusTopCU(Double)
        /// SCU plus all complex units.
        case scuPlusCU

        /// The recipe spelling, e.g. `scu+cu_top:0.06`.
        public var description: String {
            switch self {
            case .none: return "none"
            case .scu: return "scu"
            case let .scuPlusTopCU(f): return "scu+cu_top:\(f)"
            case .scuPlusCU: return "scu+cu"
            }
        }

        /// Every spelling, for errors.
        public static let spellings = ["none", "scu", "scu+cu_top:<fraction>", "scu+cu"]
    }

    /// Units that may change.
    public enum Route: String, Sendable, CaseIterable {
        case all, ru
        case ruPlusCU = "ru+cu"
    }

    /// Whether SSAH runs at all.
    public var enabled = false
    /// Units that may not change.
    public var freeze = Freeze.none
    /// Units that may change.
    public var route = Route.all
    /// Harmful prompts with refusals, for the safety score.
    public var safetyData: RecipePath?
    /// Benign data, for the utility score.
    public var utilityData: RecipePath?
    /// Group sizes.
    public var sizes = UnitSizes()

    /// The defaults: off.
    public init() {}
}
