/// Weights or inputs a model cannot use. Each description is one line naming the
/// parameter, token or length at fault.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// The configuration itself is invalid.
    case config(ModelConfigError)
    /// A parameter the architecture needs is absent from the weights.
    case missingWeight(name: String)
    /// The weights hold a tensor the architecture has no place for.
    case unexpectedWeight(name: String)
    /// A tensor's shape differs from the one the configuration implies (Hugging Face layout).
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    /// A token id outside the vocabulary.
    case tokenOutOfRange(id: Int, vocabSize: Int)
    /// A sequence longer than the model (or cache) accepts.
    case sequenceTooLong(length: Int, limit: Int)
    /// An empty input where at least one token is needed.
    case emptyInput
    /// Text input or output was asked of a generator that has no tokenizer.
    case tokenizerRequired

    public var description: String {
        switch self {
        case let .config(error): return error.description
        case let .missingWeight(name): return "weights: missing parameter '\(name)'"
        case let .unexpectedWeight(name): return "weights: unexpected parameter '\(name)' (not part of this architecture)"
        case let .shapeMismatch(name, expected, found): return "weights: parameter '\(name)' has shape \(found), expected \(expected)"
        case let .tokenOutOfRange(id, vocab): return "input: token id \(id) is outside the vocabulary 0..<\(vocab)"
        case let .sequenceTooLong(length, limit): return "input: sequence of \(length) tokens exceeds the limit of \(limit)"
        case .emptyInput: return "input: no tokens"
        case .tokenizerRequired: return "generator: text prompts need a tokenizer"
        }
    }
}
