import Foundation

/// Why a tokenizer could not be loaded, built or trained. Each description is one line that
/// names the file and, where there is one, the JSON path at fault.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be read at all.
    case unreadable(file: String, reason: String)
    /// The bytes are not valid JSON; `offset` is the byte where parsing stopped.
    case malformedJSON(file: String, offset: Int, reason: String)
    /// A field is missing, has the wrong type or an invalid value.
    case invalidField(file: String, path: String, reason: String)
    /// A field names a component or option SafeTune does not implement.
    case unsupported(file: String, path: String, feature: String)
    /// A size bound was exceeded (checked before allocating).
    case limitExceeded(file: String, path: String, reason: String)
    /// Training could not run with the given corpus or options.
    case training(reason: String)

    /// One line whatever the file put in the names and values it quotes.
    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .malformedJSON(file, offset, reason): return "\(file): invalid JSON at byte \(offset): \(reason)"
        case let .invalidField(file, path, reason): return "\(file): \(path): \(reason)"
        case let .unsupported(file, path, feature): return "\(file): \(path): unsupported \(feature)"
        case let .limitExceeded(file, path, reason): return "\(file): \(path): \(reason)"
        case let .training(reason): return "tokenizer training: \(reason)"
        }
    }
}

/// Size bounds checked before anything proportional to a claimed size is allocated.
public enum TokenizerLimits {
    /// Largest token id (exclusive) accepted from a file.
    public static let maxVocabulary = 1 << 22
    /// Longest token string accepted, in UTF-8 bytes.
    public static let maxTokenBytes = 1 << 16
    /// Largest tokenizer.json accepted, in bytes.
    public static let maxFileBytes = 1 << 30
}

/// A JSON value together with the file and path it came from, so every accessor can throw
/// an error naming exactly where the file is wrong.
struct JSONNode {
    let value: JSONValue
    let path: String
    let file: String

    func invalid(_ reason: String) -> TokenizerError {
        .invalidField(file: file, path: path.isEmpty ? "(top level)" : path, reason: reason)
    }

    func unsupported(_ feature: String) -> TokenizerError {
        .unsupported(file: file, path: path.isEmpty ? "(top level)" : path, feature: feature)
    }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The child under `key`, or nil when absent or null.
    func optional(_ key: String) throws(TokenizerError) -> JSONNode? {
        guard case .object = value else { throw invalid("expected an object, found \(value.kindName)") }
        guard let child = value[key] else { return nil }
        if case .null = child { return nil }
        return JSONNode(value: child, path: childPath(key), file: file)
    }

    /// The child under `key`; missing or null is an error.
    func required(_ key: String) throws(TokenizerError) -> JSONNode {
        guard let child = try optional(key) else {
            throw TokenizerError.invalidField(file: file, path: childPath(key), reason: "missing")
        }
        return child
    }

    func string() throws(TokenizerError) -> String {
        guard case .string(let s) = value else { throw invalid("expected a string, found \(value.kindName)") }
        return s
    }

    func bool() throws(TokenizerError) -> Bool {
        guard case .bool(let b) = value else { throw invalid("expected a boolean, found \(value.kindName)") }
        return b
    }

    func int() throws(TokenizerError) -> Int {
        switch value {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: throw invalid("expected an integer, found \(value.kindName)")
        }
    }

    func double() throws(TokenizerError) -> Double {
        switch value {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: throw invalid("expected a number, found \(value.kindName)")
        }
    }

    func array() throws(TokenizerError) -> [JSONNode] {
        guard case .array(let items) = value else { throw invalid("expected an array, found \(value.kindName)") }
        return items.enumerated().map { JSONNode(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    func object() throws(TokenizerError) -> [(key: String, node: JSONNode)] {
        guard case .object(let pairs) = value else { throw invalid("expected an object, found \(value.kindName)") }
        return pairs.map { (key: $0.0, node: JSONNode(value: $0.1, path: "\(path)[\(JSONNode.quote($0.0))]", file: file)) }
    }

    /// A token id in range.
    func tokenId() throws(TokenizerError) -> Int {
        let id = try int()
        guard id >= 0 else { throw invalid("negative token id \(id)") }
        guard id < TokenizerLimits.maxVocabulary else {
            throw TokenizerError.limitExceeded(file: file, path: path, reason: "token id \(id) exceeds the limit of \(TokenizerLimits.maxVocabulary)")
        }
        return id
    }

    /// A token string within the length bound.
    func tokenString() throws(TokenizerError) -> String {
        let s = try string()
        guard s.utf8.count <= TokenizerLimits.maxTokenBytes else {
            throw TokenizerError.limitExceeded(file: file, path: path, reason: "token longer than \(TokenizerLimits.maxTokenBytes) bytes")
        }
        return s
    }

    // Convenience accessors with defaults for optional fields.
    func string(_ key: String, default d: String) throws(TokenizerError) -> String { try optional(key)?.string() ?? d }
    func bool(_ key: String, default d: Bool) throws(TokenizerError) -> Bool { try optional(key)?.bool() ?? d }

    /// The `type` discriminator of a component object.
    func typeName() throws(TokenizerError) -> String { try required("type").string() }

    static func quote(_ s: String) -> String {
        var out = [UInt8]()
        JSONValue.writeString(s.count > 40 ? String(s.prefix(40)) + "…" : s, into: &out)
        // JSON leaves U+0085, U+2028 and U+2029 raw, but they break lines: escape them too.
        var text = ""
        for scalar in String(decoding: out, as: UTF8.self).unicodeScalars {
            if scalar.value == 0x85 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
        return text
    }
}
