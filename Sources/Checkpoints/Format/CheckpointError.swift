import Tokenizers

/// Why a checkpoint (or a Hugging Face folder) could not be read or written.
/// Each description is one line naming the file and the dataset, attribute or tensor.
public enum CheckpointError: Error, CustomStringConvertible {
    case io(file: String, reason: String)
    case notHDF5(file: String)
    /// HDF5 signature present, but the file is cut short or its structure is damaged.
    case truncated(file: String)
    /// An HDF5 file without the `format = "safetune-checkpoint"` root attribute.
    case notCheckpoint(file: String)
    /// `format_version` is newer than (or otherwise unknown to) this SafeTune.
    case unsupportedVersion(file: String, found: String, supported: Int)
    case missingDataset(file: String, dataset: String)
    /// A dataset that the configuration does not call for.
    case unexpectedDataset(file: String, dataset: String)
    case missingAttribute(file: String, object: String, attribute: String)
    case invalidAttribute(file: String, object: String, attribute: String, reason: String)
    case shapeMismatch(file: String, dataset: String, expected: [Int], found: [Int])
    case nonFinite(file: String, dataset: String, index: Int)
    /// The declared shape would need more memory than allowed (checked before allocating).
    case tooLarge(file: String, dataset: String, shape: [Int], limit: Int)
    /// The stored SHA-256 does not match the data: the tensor was altered.
    case checksumMismatch(file: String, dataset: String)
    case invalidConfig(file: String, reason: String)
    /// A value inside a dataset is out of its allowed range.
    case invalidValue(file: String, dataset: String, reason: String)
    /// A tensor or group name that cannot be stored (empty, ".", or containing "/").
    case invalidName(name: String)
    /// An adapter-only checkpoint was applied to a base whose canonical weights digest differs.
    case wrongBase(file: String, expected: String, found: String)
    /// A helper process reading the file first (`ReadIsolation`) rejected it, crashed or
    /// hung; `message` is the whole one-line description.
    case isolatedRead(file: String, message: String)
    case hdf5(HDF5Error)
    case safetensors(SafetensorsError)

    /// One line: names and paths quoted from a damaged file can hold line breaks, which
    /// are escaped (`String.oneLine`).
    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .io(file, reason): return "\(file): \(reason)"
        case let .notHDF5(file): return "\(file): not an HDF5 file"
        case let .truncated(file): return "\(file): truncated or damaged HDF5 file"
        case let .notCheckpoint(file): return "\(file): not a SafeTune checkpoint (root attribute format is not \"safetune-checkpoint\")"
        case let .unsupportedVersion(file, found, supported):
            return "\(file): format_version \(found) is not supported (this SafeTune reads version \(supported))"
        case let .missingDataset(file, dataset): return "\(file): missing dataset \(dataset)"
        case let .unexpectedDataset(file, dataset): return "\(file): unexpected dataset \(dataset)"
        case let .missingAttribute(file, object, attribute): return "\(file): \(object): missing attribute '\(attribute)'"
        case let .invalidAttribute(file, object, attribute, reason): return "\(file): \(object): attribute '\(attribute)' \(reason)"
        case let .shapeMismatch(file, dataset, expected, found):
            return "\(file): \(dataset): shape \(found) disagrees with the config, expected \(expected)"
        case let .nonFinite(file, dataset, index): return "\(file): \(dataset): non-finite value (NaN or Inf) at element \(index)"
        case let .tooLarge(file, dataset, shape, limit):
            return "\(file): \(dataset): shape \(shape) exceeds the limit of \(limit) elements"
        case let .checksumMismatch(file, dataset): return "\(file): \(dataset): SHA-256 mismatch, the data was altered"
        case let .invalidConfig(file, reason): return "\(file): /config: \(reason)"
        case let .invalidValue(file, dataset, reason): return "\(file): \(dataset): \(reason)"
        case let .invalidName(name): return "invalid tensor or group name '\(name)' (empty, '.', or contains '/')"
        case let .wrongBase(file, expected, found):
            return "\(file): adapters were trained on base \(expected.prefix(16))…, not on this base \(found.prefix(16))…"
        case let .isolatedRead(_, message): return message
        case let .hdf5(error): return error.description
        case let .safetensors(error): return error.description
        }
    }

    /// Maps an HDF5-layer failure to the checkpoint vocabulary.
    init(_ error: HDF5Error) {
        switch error {
        case let .notHDF5(file): self = .notHDF5(file: file)
        case let .damaged(file): self = .truncated(file: file)
        case let .cannotOpen(file, reason): self = .io(file: file, reason: reason)
        case let .missing(file, path): self = .missingDataset(file: file, dataset: path)
        case let .tooLarge(file, path, shape, limit): self = .tooLarge(file: file, dataset: path, shape: shape, limit: limit)
        default: self = .hdf5(error)
        }
    }
}
