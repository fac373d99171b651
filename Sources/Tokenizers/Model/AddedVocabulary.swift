/// A token from the `added_tokens` list: matched in the raw text before the model runs.
public struct AddedToken: Sendable, Equatable {
    public let id: Int
    public let content: String
    public let special: Bool
    public let lstrip: Bool
    public let rstrip: Bool
    public let singleWord: Bool
    public let normalized: Bool
}

/// The added tokens, indexed for leftmost-longest matching.
struct AddedVocabulary: Sendable {
    /// A part of the text: plain text (a scalar range) or a matched added token.
    enum Segment: Equatable {
        case text(Range<Int>)
        case token(Int)
    }

    let tokens: [AddedToken]
    /// For each first scalar: candidate (scalars, token index), longest first. One table for
    /// tokens matched on the raw text, one for tokens matched after normalization.
    private let rawIndex: [UInt32: [([Unicode.Scalar], Int)]]
    private let normalizedIndex: [UInt32: [([Unicode.Scalar], Int)]]

    var hasNormalizedTokens: Bool { !normalizedIndex.isEmpty }

    /// `normalizer` is applied to the content of tokens matched after normalization, as the
    /// `tokenizers` library does.
    init(tokens: [AddedToken], normalizer: Normalizer?) {
        self.tokens = tokens
        var raw: [UInt32: [([Unicode.Scalar], Int)]] = [:]
        var norm: [UInt32: [([Unicode.Scalar], Int)]] = [:]
        for (i, t) in tokens.enumerated() {
            if t.normalized {
                let scalars = Array((normalizer?.apply(t.content) ?? t.content).unicodeScalars)
                guard let first = scalars.first else { continue }
                norm[first.value, default: []].append((scalars, i))
            } else {
                let scalars = Array(t.content.unicodeScalars)
                guard let first = scalars.first else { continue }
                raw[first.value, default: []].append((scalars, i))
            }
        }
        for k in raw.keys { raw[k]!.sort { $0.0.count > $1.0.count } }
        for k in norm.keys { norm[k]!.sort { $0.0.count > $1.0.count } }
        rawIndex = raw
        normalizedIndex = norm
    }

    static func parse(_ node: JSONNode?) throws(TokenizerError) -> [AddedToken] {
        guard let node else { return [] }
        return try node.array().map { (item) throws(TokenizerError) in
            let content = try item.required("content").tokenString()
            guard !content.isEmpty else { throw try item.required("content").invalid("empty added token") }
            let special = try item.bool("special", default: false)
            return AddedToken(id: try item.required("id").tokenId(), content: content, special: special,
                              lstrip: try item.bool("lstrip", default: false), rstrip: try item.bool("rstrip", default: false),
                              singleWord: try item.bool("single_word", default: false),
                              normalized: try item.bool("normalized", default: !special))
        }
    }

    /// Splits `s` on added tokens (the raw set, or the normalized set), leftmost-longest.
    func split(_ s: [Unicode.Scalar], normalizedSet: Bool) -> [Segment] {
        let index = normalizedSet ? normalizedIndex : rawIndex
        if index.isEmpty { return s.isEmpty ? [] : [.text(0..<s.count)] }
        var out: [Segment] = []
        var textStart = 0
        var i = 0
        while i < s.count {
            guard let candidates = index[s[i].value] else { i += 1; continue }
            var matched: (end: Int, token: AddedToken)?
            for (scalars, ti) in candidates where i + scalars.count <= s.count && s[i..<(i + scalars.count)].elementsEqual(scalars) {
                matched = (i + scalars.count, tokens[ti])
                break
            }
            guard let (end, token) = matched else { i += 1; continue }
            if token.singleWord {
                let leftOK = i == 0 || !ScalarClass.isWord(s[i - 1])
                let rightOK = end == s.count || !ScalarClass.isWord(s[end])
                if !(leftOK && rightOK) { i = end; continue }
            }
            var start = i, stop = end
            if token.lstrip {
                while start > textStart && s[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rstrip {
                while stop < s.count && s[stop].properties.isWhitespace { stop += 1 }
            }
            if start > textStart { out.append(.text(textStart..<start)) }
            out.append(.token(token.id))
            textStart = stop
            i = stop
        }
        if textStart < s.count { out.append(.text(textStart..<s.count)) }
        return out
    }
}
