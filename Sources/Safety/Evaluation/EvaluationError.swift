/// Why an evaluation could not run: a bad evaluation file or a prompt the model cannot take.
public enum EvaluationError: Error, Equatable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(file: String, reason: String)
    /// A line is not a JSON object of the expected shape.
    case invalidLine(file: String, line: Int, reason: String)
    /// A field holds a value evaluation cannot use.
    case invalidField(file: String, line: Int, field: String, reason: String)
    /// Generation failed for one prompt (too long for the context, token out of range).
    case generation(prompt: String, reason: String)
    /// An option is out of its range.
    case invalidOption(name: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): \(reason)"
        case let .invalidLine(file, line, reason): return "\(file):\(line): \(reason)"
        case let .invalidField(file, line, field, reason): return "\(file):\(line): field '\(field)' \(reason)"
        case let .generation(prompt, reason):
            let short = prompt.count > 60 ? String(prompt.prefix(57)) + "..." : prompt
            return "generation failed for prompt \(short.debugDescription): \(reason)"
        case let .invalidOption(name, reason): return "option '\(name)' \(reason)"
        }
    }
}
