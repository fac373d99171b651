/// A data file that cannot be used, naming the file and, for a bad line, its number.
public enum DatasetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file cannot be opened or read.
    case unreadable(file: String, reason: String)
    /// One line is wrong: invalid JSON, a missing or mistyped field, an unknown role, empty content, too long.
    case badLine(file: String, line: Int, reason: String)
    /// The file holds no examples.
    case empty(file: String)

    /// `file:line: reason`.
    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read data: \(reason)"
        case let .badLine(file, line, reason): return "\(file):\(line): \(reason)"
        case let .empty(file): return "\(file): no examples (only blank lines)"
        }
    }
}
