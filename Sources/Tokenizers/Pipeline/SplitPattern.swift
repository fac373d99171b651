import Foundation

/// A pattern that splits text for a pre-tokenizer. The regexes of GPT-2, Llama-3
/// (cl100k style) and Qwen2 are recognised by their exact text and matched by hand
/// (fast, and exact for Unicode classes); any other regex goes to NSRegularExpression.
enum SplitPattern: @unchecked Sendable {
    case gpt2
    case llama3
    case qwen2
    case literal([Unicode.Scalar])
    case regex(NSRegularExpression)

    static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Builds a matcher for a regex source; nil when the regex does not compile.
    static func fromRegex(_ source: String) -> SplitPattern? {
        switch source {
        case gpt2Regex: return .gpt2
        case llama3Regex: return .llama3
        case qwen2Regex: return .qwen2
        default:
            guard let re = try? NSRegularExpression(pattern: source, options: []) else { return nil }
            return .regex(re)
        }
    }

    /// Appends the matches in `s` (non-empty, ascending, non-overlapping) to `out`.
    func matches(in s: [Unicode.Scalar], into out: inout [Range<Int>]) {
        switch self {
        case .gpt2:
            var i = 0
            while i < s.count { let end = SplitPattern.gpt2Match(s, i); out.append(i..<end); i = end }
        case .llama3:
            var i = 0
            while i < s.count { let end = SplitPattern.llamaMatch(s, i, maxDigits: 3); out.append(i..<end); i = end }
        case .qwen2:
            var i = 0
            while i < s.count { let end = SplitPattern.llamaMatch(s, i, maxDigits: 1); out.append(i..<end); i = end }
        case .literal(let lit):
            guard !lit.isEmpty else { return }
            var i = 0
            while i + lit.count <= s.count {
                if s[i] == lit[0], s[i..<(i + lit.count)].elementsEqual(lit) {
                    out.append(i..<(i + lit.count)); i += lit.count
                } else { i += 1 }
            }
        case .regex(let re):
            var text = String.UnicodeScalarView()
            text.append(contentsOf: s)
            let string = String(text)
            // Map UTF-16 offsets back to scalar indices.
            var utf16ToScalar = [Int](repeating: 0, count: string.utf16.count + 1)
            var u = 0
            for (idx, scalar) in s.enumerated() {
                let width = scalar.value > 0xFFFF ? 2 : 1
                for k in 0..<width { utf16ToScalar[u + k] = idx }
                u += width
            }
            utf16ToScalar[u] = s.count
            let ns = string as NSString
            for m in re.matches(in: string, options: [], range: NSRange(location: 0, length: ns.length)) where m.range.length > 0 {
                out.append(utf16ToScalar[m.range.location]..<utf16ToScalar[m.range.location + m.range.length])
            }
        }
    }

    /// Length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) starting at the
    /// apostrophe at `i`, or 0.
    @inline(__always)
    private static func contraction(_ s: [Unicode.Scalar], _ i: Int, caseInsensitive: Bool) -> Int {
        guard s[i] == "'", i + 1 < s.count else { return 0 }
        func lower(_ k: Int) -> UInt32 {
            guard k < s.count else { return 0 }
            let v = s[k].value
            guard caseInsensitive else { return v }
            if v >= 0x41 && v <= 0x5A { return v | 0x20 }
            if v == 0x17F { return 0x73 } // LATIN SMALL LETTER LONG S folds to 's'
            return v
        }
        switch lower(i + 1) {
        case 0x73, 0x74, 0x6D, 0x64: return 2 // s t m d
        case 0x72, 0x76: return lower(i + 2) == 0x65 ? 3 : 0 // re ve
        case 0x6C: return lower(i + 2) == 0x6C ? 3 : 0 // ll
        default: return 0
        }
    }

    @inline(__always)
    private static func run(_ s: [Unicode.Scalar], from start: Int, _ pred: (Unicode.Scalar) -> Bool) -> Int {
        var j = start
        while j < s.count && pred(s[j]) { j += 1 }
        return j
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` at `i`.
    static func gpt2Match(_ s: [Unicode.Scalar], _ i: Int) -> Int {
        let c = s[i]
        let n = contraction(s, i, caseInsensitive: false)
        if n > 0 { return i + n }
        let k = (c == " " && i + 1 < s.count) ? i + 1 : i
        let d = s[k]
        if ScalarClass.isLetter(d) { return run(s, from: k + 1, ScalarClass.isLetter) }
        if ScalarClass.isNumber(d) { return run(s, from: k + 1, ScalarClass.isNumber) }
        if !ScalarClass.isSpace(d) { return run(s, from: k + 1, ScalarClass.isOther) }
        return whitespaceTail(s, i)
    }

    /// `\s+(?!\S)|\s+` at `i` (a whitespace scalar).
    @inline(__always)
    private static func whitespaceTail(_ s: [Unicode.Scalar], _ i: Int) -> Int {
        let j = run(s, from: i + 1, ScalarClass.isSpace)
        if j == s.count || j - i < 2 { return j }
        return j - 1
    }

    /// The Llama-3 (maxDigits 3) and Qwen2 (maxDigits 1) pattern at `i`:
    /// `(?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    static func llamaMatch(_ s: [Unicode.Scalar], _ i: Int, maxDigits: Int) -> Int {
        let c = s[i]
        let n = contraction(s, i, caseInsensitive: true)
        if n > 0 { return i + n }
        if ScalarClass.isLetter(c) { return run(s, from: i + 1, ScalarClass.isLetter) }
        if ScalarClass.isNumber(c) {
            var j = i + 1
            while j < s.count, j - i < maxDigits, ScalarClass.isNumber(s[j]) { j += 1 }
            return j
        }
        if !ScalarClass.isNewline(c), i + 1 < s.count, ScalarClass.isLetter(s[i + 1]) {
            return run(s, from: i + 2, ScalarClass.isLetter)
        }
        let k = (c == " " && i + 1 < s.count) ? i + 1 : i
        if ScalarClass.isOther(s[k]) {
            let j = run(s, from: k + 1, ScalarClass.isOther)
            return run(s, from: j, ScalarClass.isNewline)
        }
        // c is whitespace here.
        let j = run(s, from: i + 1, ScalarClass.isSpace)
        var lastNewline = -1
        var m = j - 1
        while m >= i { if ScalarClass.isNewline(s[m]) { lastNewline = m; break }; m -= 1 }
        if lastNewline >= 0 { return lastNewline + 1 }
        if j == s.count || j - i < 2 { return j }
        return j - 1
    }
}

/// How a split treats the matched delimiters (the `behavior` of `Split`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Splits `0..<count` into pieces given the matches, as the `tokenizers` library does.
    func pieces(count: Int, matches: [Range<Int>], invert: Bool) -> [Range<Int>] {
        // All parts, alternating gaps and matches, each flagged.
        var parts: [(Range<Int>, Bool)] = []
        parts.reserveCapacity(matches.count * 2 + 1)
        var cursor = 0
        for m in matches {
            if m.lowerBound > cursor { parts.append((cursor..<m.lowerBound, invert)) }
            parts.append((m, !invert))
            cursor = m.upperBound
        }
        if cursor < count { parts.append((cursor..<count, invert)) }

        var out: [Range<Int>] = []
        out.reserveCapacity(parts.count)
        switch self {
        case .isolated:
            out = parts.map(\.0)
        case .removed:
            out = parts.filter { !$0.1 }.map(\.0)
        case .mergedWithPrevious:
            var previousMatch = false
            for (r, isMatch) in parts {
                if isMatch && !previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<r.upperBound
                } else { out.append(r) }
                previousMatch = isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for (r, isMatch) in parts.reversed() {
                if isMatch && !previousMatch, let last = out.last {
                    out[out.count - 1] = r.lowerBound..<last.upperBound
                } else { out.append(r) }
                previousMatch = isMatch
            }
            out.reverse()
        case .contiguous:
            var previousMatch = false
            for (r, isMatch) in parts {
                if isMatch == previousMatch, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<r.upperBound
                } else { out.append(r) }
                previousMatch = isMatch
            }
        }
        return out.filter { !$0.isEmpty }
    }
}
