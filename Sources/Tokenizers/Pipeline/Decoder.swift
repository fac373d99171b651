import Foundation

/// A decoder from the `decoder` section of tokenizer.json: turns token strings back into text.
indirect enum Decoder: Sendable {
    case byteLevel
    case metaspace(replacement: Character, prependFirst: Bool)
    case byteFallback
    case fuse
    case strip(content: Character, start: Int, stop: Int)
    case replace(pattern: String, content: String)
    case bpeSuffix(String)
    case wordPiece(prefix: String, cleanup: Bool)
    case sequence([Decoder])

    static func parse(_ node: JSONNode) throws(TokenizerError) -> Decoder {
        let type = try node.typeName()
        switch type {
        case "ByteLevel": return .byteLevel
        case "Metaspace":
            let rep = try node.required("replacement")
            let s = try rep.string()
            guard s.count == 1, let c = s.first else { throw rep.invalid("expected a single character") }
            var prepend = true
            if let scheme = try node.optional("prepend_scheme") {
                let value = try scheme.string()
                guard let parsed = PrependScheme(rawValue: value) else { throw scheme.invalid("expected first, always or never") }
                prepend = parsed != .never
            } else if let legacy = try node.optional("add_prefix_space") {
                prepend = try legacy.bool()
            }
            return .metaspace(replacement: c, prependFirst: prepend)
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            let contentNode = try node.required("content")
            let content = try contentNode.string()
            guard content.count == 1, let c = content.first else { throw contentNode.invalid("expected a single character") }
            let start = try node.required("start").int(), stop = try node.required("stop").int()
            guard start >= 0, stop >= 0 else { throw node.invalid("negative strip count") }
            return .strip(content: c, start: start, stop: stop)
        case "Replace":
            let pattern = try node.required("pattern")
            guard let lit = try pattern.optional("String") else { throw pattern.unsupported("regex replace in a decoder") }
            return .replace(pattern: try lit.string(), content: try node.required("content").string())
        case "BPEDecoder": return .bpeSuffix(try node.string("suffix", default: "</w>"))
        case "WordPiece":
            return .wordPiece(prefix: try node.string("prefix", default: "##"), cleanup: try node.bool("cleanup", default: true))
        case "Sequence":
            return .sequence(try node.required("decoders").array().map { (n) throws(TokenizerError) in try Decoder.parse(n) })
        default:
            throw try node.required("type").unsupported("decoder '\(type)'")
        }
    }

    /// Transforms the token strings; the final text is their concatenation.
    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                let start = bytes.count
                var ok = true
                for s in token.unicodeScalars {
                    guard let b = ByteLevel.scalarToByte[s.value] else { ok = false; break }
                    bytes.append(b)
                }
                // A token with characters outside the byte alphabet (an added token) is kept as is.
                if !ok {
                    bytes.removeSubrange(start...)
                    bytes.append(contentsOf: token.utf8)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case let .metaspace(replacement, prependFirst):
            return tokens.enumerated().map { i, token in
                var out = ""
                for c in token {
                    if c == replacement {
                        if !(i == 0 && prependFirst) { out.append(" ") }
                    } else { out.append(c) }
                }
                return out
            }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out.append(String(repeating: "\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for token in tokens {
                if let b = Decoder.fallbackByte(token) { pending.append(b) } else { flush(); out.append(token) }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { token in
                var chars = Substring(token)
                var n = 0
                while n < start, chars.first == content { chars = chars.dropFirst(); n += 1 }
                n = 0
                while n < stop, chars.last == content { chars = chars.dropLast(); n += 1 }
                return String(chars)
            }
        case let .replace(pattern, content):
            return tokens.map { $0.replacingOccurrences(of: pattern, with: content, options: .literal) }
        case .bpeSuffix(let suffix):
            return tokens.enumerated().map { i, token in
                token.replacingOccurrences(of: suffix, with: i == tokens.count - 1 ? "" : " ")
            }
        case let .wordPiece(prefix, cleanup):
            return tokens.enumerated().map { i, token in
                var t = token
                if i != 0 {
                    if t.hasPrefix(prefix) { t = String(t.dropFirst(prefix.count)) } else { t = " " + t }
                }
                if cleanup {
                    for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                                   (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
                        t = t.replacingOccurrences(of: a, with: b)
                    }
                }
                return t
            }
        case .sequence(let list):
            return list.reduce(tokens) { $1.decodeChain($0) }
        }
    }

    /// The byte of a `<0xNN>` token, or nil.
    static func fallbackByte(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }
}
