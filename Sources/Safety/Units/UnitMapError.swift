/// Why a unit map could not be computed, read, compared or applied.
public enum UnitMapError: Error, Equatable, CustomStringConvertible {
    /// A `--sizes` / `safety.ssah.sizes` value is malformed or out of range.
    case invalidSizes(text: String, reason: String)
    /// A scoring dataset produced no usable tokens.
    case emptyDataset(name: String)
    /// An example cannot be run through the model (token id or length).
    case badExample(name: String, index: Int, reason: String)
    /// The stored map does not fit the model (layer count, unit counts, scores).
    case shapeMismatch(source: String, key: String, expected: Int, found: Int)
    /// A required entry of the stored map is missing.
    case missingEntry(source: String, key: String)
    /// Two maps cannot be compared.
    case incompatible(reason: String)
    /// No map is stored and no safety/utility data was given to compute one.
    case noScoringData(source: String)
    /// An adapter attached to a projection cannot pin units.
    case unsupportedAdapter(path: String)

    public var description: String {
        switch self {
        case let .invalidSizes(text, reason): return "unit sizes '\(text)': \(reason)"
        case let .emptyDataset(name): return "\(name): no tokens to score units on"
        case let .badExample(name, index, reason): return "\(name): example \(index + 1): \(reason)"
        case let .shapeMismatch(source, key, expected, found):
            return "\(source): units '\(key)' has \(found) entries, expected \(expected)"
        case let .missingEntry(source, key): return "\(source): units '\(key)' is missing"
        case let .incompatible(reason): return "unit maps cannot be compared: \(reason)"
        case let .noScoringData(source): return "\(source): stores no unit map, and no safety and utility data were given to compute one"
        case let .unsupportedAdapter(path): return "\(path): its adapter is not LoRA; units can be frozen only in LoRA adapters and base weights"
        }
    }
}
