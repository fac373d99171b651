/// One pre-tokenized piece of text; `atStart` marks a piece that begins the original input
/// (Metaspace's "first" prepend scheme depends on it).
struct Piece {
    var scalars: [Unicode.Scalar]
    var atStart: Bool
}

/// When Metaspace prepends its replacement character.
enum PrependScheme: String, Sendable {
    case first, always, never
}

/// A pre-tokenizer from the `pre_tokenizer` section of tokenizer.json.
indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(SplitPattern, SplitBehavior, invert: Bool)
    case metaspace(replacement: Unicode.Scalar, scheme: PrependScheme, split: Bool)
    case digits(individual: Bool)
    case whitespace
    case whitespaceSplit
    case punctuation(SplitBehavior)
    case sequence([PreTokenizer])

    static func parse(_ node: JSONNode) throws(TokenizerError) -> PreTokenizer {
        let type = try node.typeName()
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try node.bool("add_prefix_space", default: true),
                              useRegex: try node.bool("use_regex", default: true))
        case "Split":
            let patternNode = try node.required("pattern")
            let pattern: SplitPattern
            if let lit = try patternNode.optional("String") {
                pattern = .literal(Array(try lit.string().unicodeScalars))
            } else if let re = try patternNode.optional("Regex") {
                guard let p = SplitPattern.fromRegex(try re.string()) else { throw re.invalid("regex does not compile") }
                pattern = p
            } else {
                throw patternNode.invalid("expected {\"String\": ...} or {\"Regex\": ...}")
            }
            return .split(pattern, try behavior(node.required("behavior")), invert: try node.bool("invert", default: false))
        case "Metaspace":
            let repNode = try node.required("replacement")
            let rep = Array(try repNode.string().unicodeScalars)
            guard rep.count == 1 else { throw repNode.invalid("expected a single character") }
            var scheme = PrependScheme.always
            if let s = try node.optional("prepend_scheme") {
                guard let parsed = PrependScheme(rawValue: try s.string()) else { throw s.invalid("expected first, always or never") }
                scheme = parsed
            } else if let legacy = try node.optional("add_prefix_space") {
                scheme = try legacy.bool() ? .always : .never
            }
            return .metaspace(replacement: rep[0], scheme: scheme, split: try node.bool("split", default: true))
        case "Digits": return .digits(individual: try node.bool("individual_digits", default: false))
        case "Whitespace": return .whitespace
        case "WhitespaceSplit": return .whitespaceSplit
        case "Punctuation":
            let b = try node.optional("behavior")
            return .punctuation(try b.map { (n) throws(TokenizerError) in try behavior(n) } ?? .isolated)
        case "Sequence":
            return .sequence(try node.required("pretokenizers").array().map { (n) throws(TokenizerError) in try PreTokenizer.parse(n) })
        default:
            throw try node.required("type").unsupported("pre-tokenizer '\(type)'")
        }
    }

    private static func behavior(_ node: JSONNode) throws(TokenizerError) -> SplitBehavior {
        let s = try node.string()
        guard let b = SplitBehavior(rawValue: s) else { throw node.invalid("unknown split behavior '\(s)'") }
        return b
    }

    /// Replaces each piece by its sub-pieces.
    func apply(_ pieces: inout [Piece]) {
        switch self {
        case .sequence(let list):
            for p in list { p.apply(&pieces) }
        case let .byteLevel(addPrefixSpace, useRegex):
            var out: [Piece] = []
            out.reserveCapacity(pieces.count * 2)
            var ranges: [Range<Int>] = []
            var mapped: [Unicode.Scalar] = []
            for var piece in pieces {
                if addPrefixSpace, let first = piece.scalars.first, first != " " {
                    piece.scalars.insert(" ", at: 0)
                }
                if useRegex {
                    ranges.removeAll(keepingCapacity: true)
                    SplitPattern.gpt2.matches(in: piece.scalars, into: &ranges)
                    for (k, r) in ranges.enumerated() {
                        mapped = []
                        mapped.reserveCapacity(r.count + 4)
                        ByteLevel.encode(piece.scalars[r], into: &mapped)
                        out.append(Piece(scalars: mapped, atStart: piece.atStart && k == 0))
                    }
                } else {
                    mapped = []
                    mapped.reserveCapacity(piece.scalars.count + 4)
                    ByteLevel.encode(piece.scalars[...], into: &mapped)
                    out.append(Piece(scalars: mapped, atStart: piece.atStart))
                }
            }
            pieces = out
        case let .split(pattern, behavior, invert):
            PreTokenizer.splitAll(&pieces) { s, matches in pattern.matches(in: s, into: &matches) } behavior: { s, matches in
                behavior.pieces(count: s.count, matches: matches, invert: invert)
            }
        case let .metaspace(replacement, scheme, split):
            var out: [Piece] = []
            out.reserveCapacity(pieces.count)
            for piece in pieces {
                var s = piece.scalars.map { $0 == " " ? replacement : $0 }
                switch scheme {
                case .always: if let f = s.first, f != replacement { s.insert(replacement, at: 0) }
                case .first: if piece.atStart, let f = s.first, f != replacement { s.insert(replacement, at: 0) }
                case .never: break
                }
                guard split else { out.append(Piece(scalars: s, atStart: piece.atStart)); continue }
                var matches: [Range<Int>] = []
                for (i, c) in s.enumerated() where c == replacement { matches.append(i..<(i + 1)) }
                for (k, r) in SplitBehavior.mergedWithNext.pieces(count: s.count, matches: matches, invert: false).enumerated() {
                    out.append(Piece(scalars: Array(s[r]), atStart: piece.atStart && k == 0))
                }
            }
            pieces = out
        case .digits(let individual):
            PreTokenizer.splitAll(&pieces) { s, matches in
                var i = 0
                while i < s.count {
                    guard ScalarClass.isNumber(s[i]) else { i += 1; continue }
                    var j = i + 1
                    if !individual { while j < s.count && ScalarClass.isNumber(s[j]) { j += 1 } }
                    matches.append(i..<j)
                    i = j
                }
            } behavior: { s, matches in SplitBehavior.isolated.pieces(count: s.count, matches: matches, invert: false) }
        case .whitespace:
            // \w+|[^\w\s]+, everything else removed.
            PreTokenizer.splitAll(&pieces) { s, matches in
                var i = 0
                while i < s.count {
                    if ScalarClass.isWord(s[i]) {
                        var j = i + 1
                        while j < s.count && ScalarClass.isWord(s[j]) { j += 1 }
                        matches.append(i..<j); i = j
                    } else if !ScalarClass.isSpace(s[i]) {
                        var j = i + 1
                        while j < s.count && !ScalarClass.isWord(s[j]) && !ScalarClass.isSpace(s[j]) { j += 1 }
                        matches.append(i..<j); i = j
                    } else { i += 1 }
                }
            } behavior: { s, matches in SplitBehavior.removed.pieces(count: s.count, matches: matches, invert: true) }
        case .whitespaceSplit:
            PreTokenizer.splitAll(&pieces) { s, matches in
                for (i, c) in s.enumerated() where c.properties.isWhitespace { matches.append(i..<(i + 1)) }
            } behavior: { s, matches in SplitBehavior.removed.pieces(count: s.count, matches: matches, invert: false) }
        case .punctuation(let behavior):
            PreTokenizer.splitAll(&pieces) { s, matches in
                for (i, c) in s.enumerated() where ScalarClass.isPunctuation(c) { matches.append(i..<(i + 1)) }
            } behavior: { s, matches in behavior.pieces(count: s.count, matches: matches, invert: false) }
        }
    }

    private static func splitAll(_ pieces: inout [Piece],
                                 find: ([Unicode.Scalar], inout [Range<Int>]) -> Void,
                                 behavior: ([Unicode.Scalar], [Range<Int>]) -> [Range<Int>]) {
        var out: [Piece] = []
        out.reserveCapacity(pieces.count * 2)
        var matches: [Range<Int>] = []
        for piece in pieces {
            matches.removeAll(keepingCapacity: true)
            find(piece.scalars, &matches)
            for (k, r) in behavior(piece.scalars, matches).enumerated() {
                out.append(Piece(scalars: Array(piece.scalars[r]), atStart: piece.atStart && k == 0 && r.lowerBound == 0))
            }
        }
        pieces = out
    }
}
