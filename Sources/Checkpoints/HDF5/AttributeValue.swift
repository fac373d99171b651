/// A value stored as an HDF5 attribute: a UTF-8 string, or 64-bit numbers (scalar or 1-D).
///
/// Booleans are stored as the integers 0 and 1, which h5py and `h5dump` both show plainly.
public enum AttributeValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case ints([Int64])
    case doubles([Double])

    /// The string, when this is a string attribute.
    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// The integer, when this is an integer, or a double with an integral value.
    public var intValue: Int64? {
        switch self {
        case let .int(v): return v
        case let .double(d) where d.rounded() == d && abs(d) < 9.0e18: return Int64(d)
        default: return nil
        }
    }

    /// The number as a double, when this is a numeric scalar.
    public var doubleValue: Double? {
        switch self {
        case let .int(v): return Double(v)
        case let .double(d): return d
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case let .string(s): return s
        case let .int(v): return String(v)
        case let .double(d): return String(d)
        case let .ints(v): return "[" + v.map(String.init).joined(separator: ", ") + "]"
        case let .doubles(v): return "[" + v.map { String($0) }.joined(separator: ", ") + "]"
        }
    }
}
