/// The SSAH class of one unit, with the integer codes the checkpoint's `/units` section stores.
public enum UnitClass: Int8, CaseIterable, Sendable, Comparable, CustomStringConvertible {
    /// Redundant: little importance on either set; free capacity for new learning.
    case ru = 0
    /// Utility-critical: far more important for the utility set than for the safety set.
    case ucu = 1
    /// Complex: everything else; serves both.
    case cu = 2
    /// Safety-critical: far more important for the safety set than for the utility set.
    case scu = 3

    /// The short upper-case name used in tables (`RU`, `UCU`, `CU`, `SCU`).
    public var description: String {
        switch self {
        case .ru: return "RU"
        case .ucu: return "UCU"
        case .cu: return "CU"
        case .scu: return "SCU"
        }
    }

    public static func < (a: UnitClass, b: UnitClass) -> Bool { a.rawValue < b.rawValue }
}

/// The two depth-2 modules of a block whose units SSAH scores.
public enum UnitModule: String, CaseIterable, Sendable, Hashable {
    /// MLP: a unit is one intermediate neuron (row of up/gate or `c_fc`, column of down or `c_proj`).
    case mlp
    /// Attention: a unit is one query head (its q/k/v rows, its `o_proj` / `c_proj` columns).
    case attn
}
