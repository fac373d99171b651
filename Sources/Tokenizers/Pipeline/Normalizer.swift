import Foundation

/// A text normalizer from the `normalizer` section of tokenizer.json.
indirect enum Normalizer: @unchecked Sendable {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case strip(left: Bool, right: Bool)
    /// Prepends the string to non-empty text (SentencePiece "▁" in Llama-2 style files).
    case prepend(String)
    /// Replaces every occurrence of a literal with `content`.
    case replaceLiteral(String, String)
    /// Replaces every match of a regex with `content` (taken literally).
    case replaceRegex(NSRegularExpression, String)
    case sequence([Normalizer])

    static func parse(_ node: JSONNode) throws(TokenizerError) -> Normalizer {
        let type = try node.typeName()
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Strip": return .strip(left: try node.bool("left", default: true), right: try node.bool("right", default: true))
        case "Prepend": return .prepend(try node.required("prepend").string())
        case "Replace":
            let content = try node.required("content").string()
            let pattern = try node.required("pattern")
            if let lit = try pattern.optional("String") {
                let s = try lit.string()
                guard !s.isEmpty else { throw lit.invalid("empty replace pattern") }
                return .replaceLiteral(s, content)
            }
            if let re = try pattern.optional("Regex") {
                guard let compiled = try? NSRegularExpression(pattern: try re.string()) else { throw re.invalid("regex does not compile") }
                return .replaceRegex(compiled, content)
            }
            throw pattern.invalid("expected {\"String\": ...} or {\"Regex\": ...}")
        case "Sequence":
            return .sequence(try node.required("normalizers").array().map { (n) throws(TokenizerError) in try Normalizer.parse(n) })
        default:
            throw try node.required("type").unsupported("normalizer '\(type)'")
        }
    }

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case let .strip(left, right):
            var scalars = Substring(text).unicodeScalars[...]
            if left { while let f = scalars.first, f.properties.isWhitespace { scalars = scalars.dropFirst() } }
            if right { while let l = scalars.last, l.properties.isWhitespace { scalars = scalars.dropLast() } }
            return String(String.UnicodeScalarView(scalars))
        case .prepend(let p): return text.isEmpty ? text : p + text
        case let .replaceLiteral(pattern, content): return text.replacingOccurrences(of: pattern, with: content, options: .literal)
        case let .replaceRegex(re, content):
            return re.stringByReplacingMatches(in: text, options: [], range: NSRange(location: 0, length: (text as NSString).length),
                                               withTemplate: NSRegularExpression.escapedTemplate(for: content))
        case .sequence(let list): return list.reduce(text) { $1.apply($0) }
        }
    }
}
