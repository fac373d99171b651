/// A failure inside the HDF5 layer, naming the file and the object at fault.
public enum HDF5Error: Error, Equatable, CustomStringConvertible {
    /// The file does not exist or cannot be read.
    case cannotOpen(file: String, reason: String)
    /// The file exists but does not start with an HDF5 signature.
    case notHDF5(file: String)
    /// The file has an HDF5 signature but its structure cannot be opened (truncated or damaged).
    case damaged(file: String)
    /// The file could not be created.
    case cannotCreate(file: String)
    /// No group, dataset or attribute at `path`.
    case missing(file: String, path: String)
    /// An HDF5 call failed on `path`.
    case failed(file: String, path: String, operation: String)
    /// The object holds another element type or rank than asked for.
    case wrongType(file: String, path: String, expected: String, found: String)
    /// The object declares more elements than the caller allows (checked before allocating).
    case tooLarge(file: String, path: String, shape: [Int], limit: Int)
    /// The file was already closed.
    case closed(file: String)

    public var description: String {
        switch self {
        case let .cannotOpen(file, reason): return "\(file): cannot open: \(reason)"
        case let .notHDF5(file): return "\(file): not an HDF5 file"
        case let .damaged(file): return "\(file): HDF5 file is truncated or damaged"
        case let .cannotCreate(file): return "\(file): cannot create HDF5 file"
        case let .missing(file, path): return "\(file): missing \(path)"
        case let .failed(file, path, op): return "\(file): \(path): HDF5 \(op) failed"
        case let .wrongType(file, path, expected, found): return "\(file): \(path): expected \(expected), found \(found)"
        case let .tooLarge(file, path, shape, limit):
            return "\(file): \(path): shape \(shape) exceeds the limit of \(limit) elements"
        case let .closed(file): return "\(file): file already closed"
        }
    }
}
