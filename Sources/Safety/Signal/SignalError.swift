/// Why a safety signal could not be built, read or used.
public enum SignalError: Error, Equatable, CustomStringConvertible {
    /// The checkpoint's `/signal` group lacks a tensor or attribute, or holds the wrong shape.
    case invalidGroup(key: String, reason: String)
    /// The CLS token id is outside the model's vocabulary.
    case tokenOutOfRange(id: Int, vocabSize: Int)
    /// The head's width does not match the model's hidden size.
    case widthMismatch(head: Int, model: Int)
    /// Growing the model's vocabulary failed.
    case model(String)
    /// The parent's guard does not read this model's tokens.
    case parentMismatch(String)

    public var description: String {
        switch self {
        case let .invalidGroup(key, reason): return "checkpoint /signal/\(key) \(reason)"
        case let .tokenOutOfRange(id, vocabSize): return "signal CLS token id \(id) is outside the vocabulary of \(vocabSize) tokens"
        case let .widthMismatch(head, model): return "signal head width \(head) does not match the model's hidden size \(model)"
        case let .model(reason): return "signal: \(reason)"
        case let .parentMismatch(reason): return "parent guard: \(reason)"
        }
    }
}
