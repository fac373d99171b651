import Foundation

/// A parsed JSON value that keeps object keys in file order, so a tokenizer.json can be
/// edited and written back without reordering, and written deterministically.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The value stored under `key` when this is an object (first occurrence).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first(where: { $0.0 == key })?.1
    }

    /// A one-word name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Serialises the value: objects one key per line with two-space indentation, arrays of
    /// scalars on one line. Non-ASCII text is written as UTF-8, as the `tokenizers` library does.
    public func serialized() -> Data {
        var out = [UInt8]()
        out.reserveCapacity(1 << 16)
        write(into: &out, indent: 0)
        out.append(0x0A)
        return Data(out)
    }

    /// The value on one line with no spaces (a JSONL record).
    public var line: String {
        var out = [UInt8]()
        write(into: &out, indent: nil)
        return String(decoding: out, as: UTF8.self)
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    /// Writes the value; `indent` nil writes it on one line.
    private func write(into out: inout [UInt8], indent: Int?) {
        switch self {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .int(let i): out.append(contentsOf: Array(String(i).utf8))
        case .double(let d):
            if d.isFinite, d == d.rounded(), abs(d) < 1e15 {
                out.append(contentsOf: Array(String(format: "%.1f", d).utf8))
            } else if d.isFinite {
                out.append(contentsOf: Array("\(d)".utf8))
            } else {
                out.append(contentsOf: Array("null".utf8))
            }
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty { out.append(contentsOf: [0x5B, 0x5D]); return }
            guard let indent, !items.allSatisfy(\.isScalar) else {
                out.append(0x5B)
                for (i, item) in items.enumerated() {
                    if i > 0 { out.append(contentsOf: indent == nil ? [0x2C] : [0x2C, 0x20]) }
                    item.write(into: &out, indent: indent)
                }
                out.append(0x5D)
                return
            }
            out.append(0x5B)
            for (i, item) in items.enumerated() {
                out.append(contentsOf: i == 0 ? [0x0A] : [0x2C, 0x0A])
                JSONValue.pad(&out, indent + 2)
                item.write(into: &out, indent: indent + 2)
            }
            out.append(0x0A)
            JSONValue.pad(&out, indent)
            out.append(0x5D)
        case .object(let pairs):
            if pairs.isEmpty { out.append(contentsOf: [0x7B, 0x7D]); return }
            guard let indent else {
                out.append(0x7B)
                for (i, (key, value)) in pairs.enumerated() {
                    if i > 0 { out.append(0x2C) }
                    JSONValue.writeString(key, into: &out)
                    out.append(0x3A)
                    value.write(into: &out, indent: nil)
                }
                out.append(0x7D)
                return
            }
            out.append(0x7B)
            for (i, (key, value)) in pairs.enumerated() {
                out.append(contentsOf: i == 0 ? [0x0A] : [0x2C, 0x0A])
                JSONValue.pad(&out, indent + 2)
                JSONValue.writeString(key, into: &out)
                out.append(contentsOf: [0x3A, 0x20])
                value.write(into: &out, indent: indent + 2)
            }
            out.append(0x0A)
            JSONValue.pad(&out, indent)
            out.append(0x7D)
        }
    }

    private static func pad(_ out: inout [UInt8], _ n: Int) {
        out.append(contentsOf: repeatElement(0x20, count: n))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        for byte in s.utf8 {
            switch byte {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0x08: out.append(contentsOf: [0x5C, 0x62])
            case 0x0C: out.append(contentsOf: [0x5C, 0x66])
            case 0..<0x20:
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(0x22)
    }
}
