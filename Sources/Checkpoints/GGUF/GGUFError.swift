import Tokenizers

/// Why a GGUF file could not be read, imported or written. Each description is one line
/// naming the file and, where one is at fault, the metadata key or tensor.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    case io(file: String, reason: String)
    /// The header, a metadata value or the tensor table is malformed or out of bounds.
    case invalid(file: String, reason: String)
    /// A metadata key is missing, has the wrong type or an unusable value.
    case metadata(file: String, key: String, reason: String)
    /// One tensor's entry or data is unusable.
    case tensor(file: String, tensor: String, reason: String)
    /// A well-formed file that asks for something SafeTune does not implement.
    case unsupported(file: String, reason: String)

    /// One line, whatever the file put in its keys and names (line breaks come out escaped).
    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .io(file, reason): return "\(file): \(reason)"
        case let .invalid(file, reason): return "\(file): invalid GGUF: \(reason)"
        case let .metadata(file, key, reason): return "\(file): GGUF key '\(key)': \(reason)"
        case let .tensor(file, tensor, reason): return "\(file): GGUF tensor '\(tensor)': \(reason)"
        case let .unsupported(file, reason): return "\(file): unsupported GGUF: \(reason)"
        }
    }
}
