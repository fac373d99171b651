import Training

/// A documented numeric range, with open or closed ends, that renders itself for errors.
public struct ValueRange: Sendable, Equatable, CustomStringConvertible {
    /// Lower bound, if any.
    public let lower: Double?
    /// Whether `lower` itself is allowed.
    public let lowerInclusive: Bool
    /// Upper bound, if any.
    public let upper: Double?
    /// Whether `upper` itself is allowed.
    public let upperInclusive: Bool

    /// Creates a range; pass nil for an open end.
    public init(lower: Double?, lowerInclusive: Bool = true, upper: Double?, upperInclusive: Bool = true) {
        self.lower = lower
        self.lowerInclusive = lowerInclusive
        self.upper = upper
        self.upperInclusive = upperInclusive
    }

    /// `x >= value`.
    public static func atLeast(_ value: Double) -> ValueRange { ValueRange(lower: value, upper: nil) }
    /// `x > value`.
    public static func above(_ value: Double) -> ValueRange { ValueRange(lower: value, lowerInclusive: false, upper: nil) }
    /// `lower <= x <= upper`.
    public static func closed(_ lower: Double, _ upper: Double) -> ValueRange { ValueRange(lower: lower, upper: upper) }
    /// `0 < x < 1`: a proper fraction.
    public static let fraction = ValueRange(lower: 0, lowerInclusive: false, upper: 1, upperInclusive: false)
    /// `0 <= x < 1`.
    public static let probability = ValueRange(lower: 0, upper: 1, upperInclusive: false)

    /// Whether `value` lies in the range (never true for NaN or infinities).
    public func contains(_ value: Double) -> Bool {
        guard value.isFinite else { return false }
        if let lower, lowerInclusive ? value < lower : value <= lower { return false }
        if let upper, upperInclusive ? value > upper : value >= upper { return false }
        return true
    }

    /// E.g. `0 < x <= 1` or `x >= 1`.
    public var description: String {
        func show(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)" }
        switch (lower, upper) {
        case let (l?, u?): return "\(show(l)) \(lowerInclusive ? "<=" : "<") x \(upperInclusive ? "<=" : "<") \(show(u))"
        case let (l?, nil): return "x \(lowerInclusive ? ">=" : ">") \(show(l))"
        case let (nil, u?): return "x \(upperInclusive ? "<=" : "<") \(show(u))"
        case (nil, nil): return "any number"
        }
    }
}
