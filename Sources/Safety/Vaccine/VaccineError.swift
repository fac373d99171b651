/// Why purification or the gate could not do its work. The gate turns every one of these
/// into a reject verdict (fail closed).
public enum VaccineError: Error, Equatable, CustomStringConvertible {
    /// The clean data has no usable prompt/completion pair.
    case noCleanData(source: String)
    /// A setting is out of range.
    case invalidSetting(key: String, reason: String)
    /// A checkpoint's tensor holds NaN or infinity.
    case nonFinite(file: String, tensor: String)
    /// Two models that must share an architecture do not.
    case shapeMismatch(file: String, reason: String)
    /// The parent of the checkpoint under test cannot be found or read.
    case missingParent(file: String, reason: String)
    /// The given parent is not the one the checkpoint's provenance names.
    case wrongParent(file: String, expected: String, found: String)
    /// A file cannot be read.
    case unreadable(file: String, reason: String)
    /// The time limit was reached.
    case timeout(phase: String, seconds: Double)

    public var description: String {
        switch self {
        case let .noCleanData(source): return "\(source): no benign prompt/completion pair to use as clean data"
        case let .invalidSetting(key, reason): return "setting \(key): \(reason)"
        case let .nonFinite(file, tensor): return "\(file): tensor '\(tensor)' holds NaN or infinite values"
        case let .shapeMismatch(file, reason): return "\(file): \(reason)"
        case let .missingParent(file, reason): return "\(file): no parent to compare with (\(reason)); pass --reference PARENT"
        case let .wrongParent(file, expected, found):
            return "\(file): provenance names parent weights \(expected.prefix(16))…, the reference has \(found.prefix(16))…"
        case let .unreadable(file, reason): return "\(file): \(reason)"
        case let .timeout(phase, seconds): return "time limit of \(Int(seconds)) s reached while \(phase)"
        }
    }
}
