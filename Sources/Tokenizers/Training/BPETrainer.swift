import Foundation

/// Trains a byte-level BPE tokenizer (GPT-2 pre-tokenizer regex and byte alphabet) and
/// writes it as a tokenizer.json that the Hugging Face `tokenizers` library loads.
///
/// Deterministic: the most frequent pair is merged first; ties go to the pair with the
/// smaller (left id, right id). The same corpus and options always give the same bytes.
public struct BPETrainer: Sendable {
    /// Target vocabulary size, special tokens and the 256 byte tokens included.
    public var vocabSize: Int
    /// Pairs seen fewer times than this are never merged.
    public var minFrequency: Int
    /// Special tokens, given ids 0, 1, ... in this order.
    public var specialTokens: [String]

    public init(vocabSize: Int, minFrequency: Int = 2, specialTokens: [String] = []) {
        self.vocabSize = vocabSize
        self.minFrequency = minFrequency
        self.specialTokens = specialTokens
    }

    /// Trains on `texts` and returns the tokenizer.json bytes.
    public func train(texts: [String]) throws(TokenizerError) -> Data {
        var specials: [String] = []
        for s in specialTokens where !specials.contains(s) {
            guard !s.isEmpty else { throw .training(reason: "empty special token") }
            specials.append(s)
        }
        let base = specials.count + 256
        guard vocabSize >= base else {
            throw .training(reason: "vocabulary size \(vocabSize) is below \(base) (special tokens plus 256 byte tokens)")
        }
        guard vocabSize <= TokenizerLimits.maxVocabulary else {
            throw .training(reason: "vocabulary size \(vocabSize) exceeds the limit of \(TokenizerLimits.maxVocabulary)")
        }
        guard minFrequency >= 1 else { throw .training(reason: "minimum frequency must be at least 1") }

        // Token strings by id; specials first, then the byte alphabet in byte order.
        var tokens = specials
        var ids: [String: Int] = [:]
        for (i, s) in specials.enumerated() { ids[s] = i }
        var byteIds = [Int](repeating: 0, count: 256)
        for b in 0..<256 {
            let s = String(Character(ByteLevel.byteToScalar[b]))
            if let existing = ids[s] { byteIds[b] = existing; continue }
            byteIds[b] = tokens.count
            ids[s] = tokens.count
            tokens.append(s)
        }

        let (initialWords, counts) = BPETrainer.countWords(texts, byteIds: byteIds)
        var words = initialWords
        var pairCounts: [UInt64: Int] = [:]
        var pairWords: [UInt64: Set<Int>] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for k in 0..<(word.count - 1) {
                let key = BPETrainer.key(word[k], word[k + 1])
                pairCounts[key, default: 0] += counts[w]
                pairWords[key, default: []].insert(w)
            }
        }
        var heap = MinHeap<PairEntry>()
        for key in pairCounts.keys.sorted() { heap.push(PairEntry(count: pairCounts[key]!, key: key)) }

        var merges: [(Int, Int)] = []
        while tokens.count < vocabSize, let top = heap.pop() {
            let current = pairCounts[top.key] ?? 0
            if current != top.count {
                if current > 0 { heap.push(PairEntry(count: current, key: top.key)) }
                continue
            }
            if current < minFrequency { break }
            let a = Int(top.key >> 32), b = Int(top.key & 0xFFFF_FFFF)
            let merged = tokens[a] + tokens[b]
            let newId: Int
            if let existing = ids[merged] {
                newId = existing
            } else {
                newId = tokens.count
                ids[merged] = newId
                tokens.append(merged)
            }
            merges.append((a, b))

            var changed = Set<UInt64>()
            for w in (pairWords[top.key] ?? []).sorted() {
                let old = words[w]
                guard old.count > 1 else { continue }
                var new: [Int] = []
                new.reserveCapacity(old.count)
                var k = 0
                var hit = false
                while k < old.count {
                    if k + 1 < old.count && old[k] == a && old[k + 1] == b {
                        new.append(newId); k += 2; hit = true
                    } else {
                        new.append(old[k]); k += 1
                    }
                }
                guard hit else { continue }
                let c = counts[w]
                for k in 0..<(old.count - 1) {
                    let key = BPETrainer.key(old[k], old[k + 1])
                    pairCounts[key, default: 0] -= c
                    changed.insert(key)
                }
                for k in 0..<max(0, new.count - 1) {
                    let key = BPETrainer.key(new[k], new[k + 1])
                    pairCounts[key, default: 0] += c
                    pairWords[key, default: []].insert(w)
                    changed.insert(key)
                }
                words[w] = new
            }
            pairCounts[top.key] = 0
            for key in changed.sorted() where key != top.key {
                let c = pairCounts[key] ?? 0
                if c > 0 { heap.push(PairEntry(count: c, key: key)) } else { pairCounts[key] = nil }
            }
        }
        return BPETrainer.json(tokens: tokens, specials: specials, merges: merges)
    }

    /// Trains and loads the result.
    public func trainTokenizer(texts: [String], source: String = "tokenizer.json") throws(TokenizerError) -> Tokenizer {
        try Tokenizer(data: train(texts: texts), source: source)
    }

    @inline(__always)
    private static func key(_ a: Int, _ b: Int) -> UInt64 { UInt64(a) << 32 | UInt64(b) }

    /// Unique pre-tokenized words (as byte token ids) and their counts, in a fixed order.
    private static func countWords(_ texts: [String], byteIds: [Int]) -> ([[Int]], [Int]) {
        var counts: [[UInt8]: Int] = [:]
        var ranges: [Range<Int>] = []
        for text in texts {
            let scalars = Array(text.unicodeScalars)
            ranges.removeAll(keepingCapacity: true)
            SplitPattern.gpt2.matches(in: scalars, into: &ranges)
            for r in ranges {
                var bytes: [UInt8] = []
                bytes.reserveCapacity(r.count)
                for s in scalars[r] { bytes.append(contentsOf: String(Character(s)).utf8) }
                counts[bytes, default: 0] += 1
            }
        }
        let sorted = counts.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        return (sorted.map { $0.key.map { byteIds[Int($0)] } }, sorted.map(\.value))
    }

    /// The tokenizer.json document, in the layout the `tokenizers` library writes.
    private static func json(tokens: [String], specials: [String], merges: [(Int, Int)]) -> Data {
        let byteLevel: JSONValue = .object([
            ("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)),
            ("trim_offsets", .bool(true)), ("use_regex", .bool(true)),
        ])
        let added: [JSONValue] = specials.enumerated().map { id, s in
            .object([("id", .int(id)), ("content", .string(s)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                     ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(true))])
        }
        let model: JSONValue = .object([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null),
            ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null),
            ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)), ("ignore_merges", .bool(false)),
            ("vocab", .object(tokens.enumerated().map { ($1, .int($0)) })),
            ("merges", .array(merges.map { .array([.string(tokens[$0.0]), .string(tokens[$0.1])]) })),
        ])
        let root: JSONValue = .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(added)), ("normalizer", .null), ("pre_tokenizer", byteLevel),
            ("post_processor", .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                                        ("trim_offsets", .bool(false)), ("use_regex", .bool(true))])),
            ("decoder", byteLevel), ("model", model),
        ])
        return root.serialized()
    }
}

/// A pair and its count, ordered for `MinHeap` so that the most frequent pair comes first
/// and equal counts pop the smaller pair key first (deterministic merges).
struct PairEntry: Comparable {
    let count: Int
    let key: UInt64

    static func < (a: PairEntry, b: PairEntry) -> Bool { a.count != b.count ? a.count > b.count : a.key < b.key }
}
