import Tokenizers

/// A `.safetensors` file (or a sharded index) that cannot be read or written,
/// naming the file and, where one is at fault, the tensor.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case io(file: String, reason: String)
    /// The 8-byte header length or the JSON header itself is unusable.
    case invalidHeader(file: String, reason: String)
    /// One tensor entry in the header is inconsistent.
    case invalidTensor(file: String, tensor: String, reason: String)
    /// A dtype SafeTune does not know, or one that cannot become float32.
    case unsupportedDType(file: String, tensor: String, dtype: String)
    /// The data section is not exactly covered by the tensors (gap, overlap or trailing bytes).
    case layout(file: String, reason: String)
    case missingTensor(file: String, tensor: String)
    /// `model.safetensors.index.json` is malformed.
    case invalidIndex(file: String, reason: String)

    /// One line, whatever the file put in its tensor names and dtypes (line breaks come out escaped).
    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .io(file, reason): return "\(file): \(reason)"
        case let .invalidHeader(file, reason): return "\(file): invalid safetensors header: \(reason)"
        case let .invalidTensor(file, tensor, reason): return "\(file): tensor '\(tensor)': \(reason)"
        case let .unsupportedDType(file, tensor, dtype): return "\(file): tensor '\(tensor)': unsupported dtype \(dtype)"
        case let .layout(file, reason): return "\(file): invalid safetensors data layout: \(reason)"
        case let .missingTensor(file, tensor): return "\(file): no tensor '\(tensor)'"
        case let .invalidIndex(file, reason): return "\(file): invalid shard index: \(reason)"
        }
    }
}
