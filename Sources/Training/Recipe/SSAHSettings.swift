import Foundation

/// `safety.ssah`: find the units that carry the refusal decision and keep training away from them.
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

        static let spellings = ["none", "scu", "scu+cu_top:<fraction>", "scu+cu"]

        static func read(_ node: RecipeNode, keyPath: String) throws -> Freeze {
            guard case let .scalar(text, _) = node.kind else {
                throw RecipeError.wrongType(node.location, keyPath: keyPath, expected: "one of \(spellings.joined(separator: ", "))",
                                            got: node.summary)
            }
            switch text {
            case "none": return .none
            case "scu": return .scu
            case "scu+cu": return .scuPlusCU
            default:
                let prefix = "scu+cu_top:"
                if text.hasPrefix(prefix) {
                    let number = String(text.dropFirst(prefix.count))
                    guard let f = Double(number), ValueRange.fraction.contains(f) else {
                        throw RecipeError.outOfRange(node.location, keyPath: keyPath, value: "'\(number)' in '\(text)'",
                                                     range: "a fraction, \(ValueRange.fraction)")
                    }
                    return .scuPlusTopCU(f)
                }
                throw RecipeError.invalidChoice(node.location, keyPath: keyPath, value: text, choices: spellings,
                                                suggestion: EditDistance.suggestion(for: text, among: ["none", "scu", "scu+cu"]))
            }
        }
    }

    /// Units that may change.
    public enum Route: String, Sendable, CaseIterable {
        case all, ru
        case ruPlusCU = "ru+cu"
    }

    /// Unit group sizes, each a fraction of a layer's units.
    public struct Sizes: Sendable, Equatable {
        /// Safety-critical units.
        public let scu: Double
        /// Utility-critical units.
        public let ucu: Double
        /// Redundant units.
        public let ru: Double
    }

    /// Whether SSAH runs at all.
    public let enabled: Bool
    /// Units that may not change.
    public let freeze: Freeze
    /// Units that may change.
    public let route: Route
    /// Harmful prompts with refusals, for the safety score.
    public let safetyData: RecipePath?
    /// Benign data, for the utility score.
    public let utilityData: RecipePath?
    /// Group sizes.
    public let sizes: Sizes

    init(reading r: MappingReader, model: ModelSection) throws {
        enabled = try r.bool("enabled", default: false)
        freeze = try r.node("freeze").map { try Freeze.read($0, keyPath: r.full("freeze")) } ?? .none
        route = try r.choice("route", default: Route.all)
        safetyData = try r.path("safety_data")
        utilityData = try r.path("utility_data")
        let s = try r.section("sizes", allowed: RecipeSchema.children(of: "safety.ssah.sizes"))
        sizes = Sizes(scu: try s.double("scu", default: 0.015, range: .fraction),
                      ucu: try s.double("ucu", default: 0.10, range: .fraction),
                      ru: try s.double("ru", default: 0.15, range: .fraction))

        if sizes.scu + sizes.ucu + sizes.ru >= 1 {
            throw RecipeError.conflict(s.location, keyPath: s.path,
                                       message: "scu + ucu + ru must stay below 1 so some complex units remain, got \(sizes.scu + sizes.ucu + sizes.ru)")
        }
        if !enabled, freeze != .none {
            throw RecipeError.conflict(r.location(of: "freeze"), keyPath: r.full("freeze"),
                                       message: "'\(freeze)' needs safety.ssah.enabled: true")
        }
        if !enabled, route != .all {
            throw RecipeError.conflict(r.location(of: "route"), keyPath: r.full("route"),
                                       message: "'\(route.rawValue)' needs safety.ssah.enabled: true")
        }
        if route == .ruPlusCU, freeze == .scuPlusCU {
            throw RecipeError.conflict(r.location(of: "route"), keyPath: r.full("route"),
                                       message: "'ru+cu' routes updates into complex units that freeze 'scu+cu' freezes")
        }
        if enabled, !model.baseIsCheckpoint, safetyData == nil || utilityData == nil {
            let missing = safetyData == nil ? "safety_data" : "utility_data"
            throw RecipeError.conflict(r.location(of: "enabled"), keyPath: r.full(missing),
                                       message: "needed to score units: only a .h5 base checkpoint can supply a stored unit map")
        }
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("enabled", .bool(enabled)), ("freeze", .string(freeze.description)), ("route", .string(route.rawValue)),
                 ("safety_data", safetyData.map { .string($0.relative(to: root)) } ?? .null),
                 ("utility_data", utilityData.map { .string($0.relative(to: root)) } ?? .null),
                 ("sizes", .object([("scu", .double(sizes.scu)), ("ucu", .double(sizes.ucu)), ("ru", .double(sizes.ru))]))])
    }
}
