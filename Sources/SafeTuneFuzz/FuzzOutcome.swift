/// What one input did to a parser. A crash has no case: it ends the process.
public enum FuzzOutcome: Sendable, Equatable {
    /// Parsed (and, where cheap, used: tensors converted, text encoded).
    case accepted
    /// Rejected with the module's typed error, whose one-line description is kept.
    case rejected(String)
    /// A finding: an error of an unexpected type, or a description that is not one line.
    case badError(String)

    /// Classifies a thrown error: `typed` tells whether it is one the parser promises.
    static func error(_ error: Error, typed: Bool) -> FuzzOutcome {
        let text = String(describing: error)
        guard typed else { return .badError("untyped \(type(of: error)): \(text)") }
        guard !text.isEmpty, !text.contains(where: \.isNewline) else { return .badError("not one line: \(text)") }
        return .rejected(text)
    }
}
