/// When guarded decoding re-runs the CLS classification, by number of generated tokens.
/// The prompt's own classification (step 0) is always made: it comes free with the prompt.
public enum CheckSchedule: Sendable, Equatable, CustomStringConvertible {
    /// Before every generated token.
    case every
    /// Only the prompt's classification.
    case first
    /// Every `k` generated tokens.
    case periodic(Int)
    /// Frequent checks early, then rarer: the first after `initial` tokens, each interval
    /// `growth` times the previous, capped at `maxInterval` (1, 2, 4, 8, 16, 32, 48, ... by default).
    case annealing(initial: Int, growth: Double, maxInterval: Int)

    /// The annealing schedule of the defaults (1, growth 2, at most 16 tokens apart).
    public static let defaultAnnealing = CheckSchedule.annealing(initial: 1, growth: 2, maxInterval: 16)

    /// A schedule by name: `every`, `first`, `periodic` (every `period` tokens), `annealing`.
    public init?(name: String, period: Int = 8) {
        switch name.lowercased() {
        case "every": self = .every
        case "first": self = .first
        case "periodic": self = period > 0 ? .periodic(period) : .every
        case "annealing": self = .defaultAnnealing
        default: return nil
        }
    }

    /// Whether a check is due when `step` tokens have been generated (step ≥ 1).
    public func isCheck(step: Int) -> Bool {
        guard step >= 1 else { return false }
        switch self {
        case .every: return true
        case .first: return false
        case let .periodic(k): return step % max(1, k) == 0
        case let .annealing(initial, growth, maxInterval):
            var at = max(1, initial)
            var interval = Double(max(1, initial))
            let cap = Double(max(1, maxInterval))
            while at < step {
                at += Int(interval)
                interval = min(cap, (interval * max(1, growth)).rounded(.up))
            }
            return at == step
        }
    }

    public var description: String {
        switch self {
        case .every: return "every"
        case .first: return "first"
        case let .periodic(k): return "periodic(\(k))"
        case let .annealing(initial, growth, maxInterval): return "annealing(\(initial), ×\(growth), ≤\(maxInterval))"
        }
    }
}
