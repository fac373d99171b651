import Training

/// A plain value tree with a fixed key order and one exact rendering, used for the
/// canonical text of a resolved recipe (hashed for provenance) and for `--json` output.
public indirect enum CanonicalValue: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([CanonicalValue])
    /// Keys in the order given: callers build objects in schema order, so output is stable.
    case object([(String, CanonicalValue)])

    /// Pretty JSON with two-space indentation and a trailing newline; identical input gives identical bytes.
    public func jsonText() -> String {
        var out = ""
        writeJSON(into: &out, indent: 0)
        out.append("\n")
        return out
    }

    /// Block-style YAML for people to read (the hashed form is the JSON).
    public func yamlText() -> String {
        var out = ""
        switch self {
        case let .object(fields) where !fields.isEmpty: writeYAMLFields(fields, into: &out, indent: 0)
        case let .list(items) where !items.isEmpty: writeYAMLItems(items, into: &out, indent: 0)
        default: out = yamlScalar() + "\n"
        }
        return out
    }

    private func writeJSON(into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent + 2), close = String(repeating: " ", count: indent)
        switch self {
        case let .list(items):
            if items.isEmpty { out.append("[]"); return }
            out.append("[\n")
            for (i, item) in items.enumerated() {
                out.append(pad)
                item.writeJSON(into: &out, indent: indent + 2)
                out.append(i + 1 < items.count ? ",\n" : "\n")
            }
            out.append(close + "]")
        case let .object(fields):
            if fields.isEmpty { out.append("{}"); return }
            out.append("{\n")
            for (i, (key, value)) in fields.enumerated() {
                out.append(pad + Self.jsonString(key) + ": ")
                value.writeJSON(into: &out, indent: indent + 2)
                out.append(i + 1 < fields.count ? ",\n" : "\n")
            }
            out.append(close + "}")
        default:
            out.append(jsonScalar())
        }
    }

    private func jsonScalar() -> String {
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .double(d): return Self.number(d)
        case let .string(s): return Self.jsonString(s)
        case .list, .object: return ""
        }
    }

    /// Shortest round-trip text; integral values keep a `.0` so the type survives.
    static func number(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        return "\(d)"
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private func writeYAMLFields(_ fields: [(String, CanonicalValue)], into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent)
        for (key, value) in fields {
            switch value {
            case let .object(inner) where !inner.isEmpty:
                out.append("\(pad)\(key):\n")
                writeYAMLFields(inner, into: &out, indent: indent + 2)
            case let .list(items) where !items.isEmpty:
                out.append("\(pad)\(key):\n")
                writeYAMLItems(items, into: &out, indent: indent + 2)
            default:
                out.append("\(pad)\(key): \(value.yamlScalar())\n")
            }
        }
    }

    private func writeYAMLItems(_ items: [CanonicalValue], into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent)
        for item in items {
            switch item {
            case let .object(fields) where !fields.isEmpty:
                // First field on the dash line, the rest aligned under it.
                var block = ""
                writeYAMLFields(fields, into: &block, indent: indent + 2)
                out.append(pad + "- " + block.dropFirst(indent + 2))
            case let .list(inner) where !inner.isEmpty:
                out.append("\(pad)-\n")
                writeYAMLItems(inner, into: &out, indent: indent + 2)
            default:
                out.append("\(pad)- \(item.yamlScalar())\n")
            }
        }
    }

    private func yamlScalar() -> String {
        switch self {
        case let .string(s): return Self.yamlString(s)
        case .list: return "[]"
        case .object: return "{}"
        default: return jsonScalar()
        }
    }

    /// Plain when it cannot be misread as another type or as YAML syntax, else JSON-quoted.
    static func yamlString(_ s: String) -> String {
        let reserved: Set<String> = ["", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False",
                                     "FALSE", "yes", "no", "on", "off", "Yes", "No", "On", "Off"]
        let safe = s.unicodeScalars.allSatisfy { scalar in
            (scalar.value >= 0x20 && scalar.value < 0x7f) && !":#{}[],&*!|>'\"%@`".unicodeScalars.contains(scalar)
        }
        let first = s.unicodeScalars.first
        if reserved.contains(s) || !safe || Double(s) != nil || first == " " || first == "-" || first == "?"
            || s.hasSuffix(" ") {
            return jsonString(s)
        }
        return s
    }
}
