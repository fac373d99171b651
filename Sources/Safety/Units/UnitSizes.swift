import Foundation

/// How many units each class receives, as fractions of all units of a module kind
/// (all MLP neurons of the model, or all heads); the rest are complex units.
///
/// Defaults follow the published Llama-2-7B-Chat split (SCU 1.3 %, UCU 13.3 %, RU 14.8 %),
/// rounded: SCU 1.5 %, UCU 10 %, RU 15 %.
public struct UnitSizes: Sendable, Equatable, CustomStringConvertible {
    /// Safety-critical fraction.
    public var scu: Double
    /// Utility-critical fraction.
    public var ucu: Double
    /// Redundant fraction.
    public var ru: Double

    /// Sizes as given; `validate()` checks them.
    public init(scu: Double = 0.015, ucu: Double = 0.10, ru: Double = 0.15) {
        self.scu = scu
        self.ucu = ucu
        self.ru = ru
    }

    /// Parses `scu=0.015,ucu=0.10,ru=0.15`; keys may be omitted (defaults) but not repeated or unknown.
    public init(parsing text: String) throws(UnitMapError) {
        self.init()
        var seen: Set<String> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw .invalidSizes(text: text, reason: "'\(item)' is not key=fraction") }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            guard let value = Double(parts[1].trimmingCharacters(in: .whitespaces)) else {
                throw .invalidSizes(text: text, reason: "'\(parts[1])' is not a number")
            }
            guard seen.insert(key).inserted else { throw .invalidSizes(text: text, reason: "'\(key)' is given twice") }
            switch key {
            case "scu": scu = value
            case "ucu": ucu = value
            case "ru": ru = value
            default: throw .invalidSizes(text: text, reason: "unknown key '\(key)' (scu, ucu, ru)")
            }
        }
        try validate()
    }

    /// Each fraction in [0, 1) and together below 1, so some complex units remain.
    public func validate() throws(UnitMapError) {
        for (key, v) in [("scu", scu), ("ucu", ucu), ("ru", ru)] where !(v >= 0 && v < 1) {
            throw .invalidSizes(text: description, reason: "\(key) = \(v) is not a fraction in [0, 1)")
        }
        if scu + ucu + ru >= 1 {
            throw .invalidSizes(text: description, reason: "scu + ucu + ru = \(scu + ucu + ru) leaves no complex units")
        }
    }

    /// `scu=…,ucu=…,ru=…`, the spelling `init(parsing:)` reads.
    public var description: String { "scu=\(scu),ucu=\(ucu),ru=\(ru)" }

    /// Number of units of `total` a fraction selects (rounded to nearest, at most `total`).
    static func count(_ fraction: Double, of total: Int) -> Int {
        min(total, Int((fraction * Double(total)).rounded()))
    }
}
