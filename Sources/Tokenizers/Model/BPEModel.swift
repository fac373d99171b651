/// The BPE model of a tokenizer.json: vocabulary, ranked merges and the options that decide
/// how characters outside the vocabulary are handled.
struct BPEModel: Sendable {
    let vocab: [String: Int]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    /// Ids of single-character tokens, keyed by scalar value (used when no prefix/suffix is set).
    let charIds: [UInt32: Int]
    /// `<0xNN>` token ids, -1 where absent; empty unless byte fallback is on.
    let byteFallbackIds: [Int]
    let unkId: Int?
    let fuseUnk: Bool
    let ignoreMerges: Bool
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let maxId: Int

    static func parse(_ node: JSONNode) throws(TokenizerError) -> BPEModel {
        let typeNode = try node.optional("type")
        if let typeNode {
            let type = try typeNode.string()
            guard type == "BPE" else { throw typeNode.unsupported("model '\(type)'") }
        }
        if let dropout = try node.optional("dropout"), try dropout.double() > 0 {
            throw dropout.unsupported("BPE dropout")
        }
        let vocabNode = try node.required("vocab")
        let entries = try vocabNode.object()
        guard entries.count <= TokenizerLimits.maxVocabulary else {
            throw TokenizerError.limitExceeded(file: node.file, path: vocabNode.path,
                                               reason: "\(entries.count) entries exceed the limit of \(TokenizerLimits.maxVocabulary)")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(entries.count)
        var maxId = -1
        for (key, entry) in entries {
            guard key.utf8.count <= TokenizerLimits.maxTokenBytes else {
                throw TokenizerError.limitExceeded(file: node.file, path: entry.path, reason: "token longer than \(TokenizerLimits.maxTokenBytes) bytes")
            }
            let id = try entry.tokenId()
            vocab[key] = id
            maxId = max(maxId, id)
        }
        let prefix = try node.optional("continuing_subword_prefix")?.string()
        let suffix = try node.optional("end_of_word_suffix")?.string()

        var merges: [UInt64: UInt64] = [:]
        if let mergesNode = try node.optional("merges") {
            let list = try mergesNode.array()
            merges.reserveCapacity(list.count)
            for (rank, item) in list.enumerated() {
                let a: String, b: String
                switch item.value {
                case .string(let s):
                    guard let space = s.firstIndex(of: " ") else { throw item.invalid("expected \"left right\"") }
                    a = String(s[..<space]); b = String(s[s.index(after: space)...])
                case .array:
                    let pair = try item.array()
                    guard pair.count == 2 else { throw item.invalid("expected a pair") }
                    a = try pair[0].string(); b = try pair[1].string()
                default:
                    throw item.invalid("expected a pair, found \(item.value.kindName)")
                }
                guard let ia = vocab[a] else { throw item.invalid("token \(JSONNode.quote(a)) is not in the vocabulary") }
                guard let ib = vocab[b] else { throw item.invalid("token \(JSONNode.quote(b)) is not in the vocabulary") }
                var right = Substring(b)
                if let prefix, right.hasPrefix(prefix) { right = right.dropFirst(prefix.count) }
                let merged = a + right
                guard let im = vocab[merged] else { throw item.invalid("merged token \(JSONNode.quote(merged)) is not in the vocabulary") }
                let key = UInt64(ia) << 32 | UInt64(ib)
                if merges[key] == nil { merges[key] = UInt64(rank) << 32 | UInt64(im) }
            }
        }

        var charIds: [UInt32: Int] = [:]
        for (token, id) in vocab {
            var it = token.unicodeScalars.makeIterator()
            if let first = it.next(), it.next() == nil { charIds[first.value] = id }
        }
        var unkId: Int?
        if let unkNode = try node.optional("unk_token") {
            let unk = try unkNode.string()
            guard let id = vocab[unk] else { throw unkNode.invalid("unk token \(JSONNode.quote(unk)) is not in the vocabulary") }
            unkId = id
        }
        var byteFallbackIds: [Int] = []
        if try node.bool("byte_fallback", default: false) {
            byteFallbackIds = (0..<256).map { vocab[BPEModel.byteToken(UInt8($0))] ?? -1 }
        }
        return BPEModel(vocab: vocab, merges: merges, charIds: charIds, byteFallbackIds: byteFallbackIds, unkId: unkId,
                        fuseUnk: try node.bool("fuse_unk", default: false),
                        ignoreMerges: try node.bool("ignore_merges", default: false),
                        continuingSubwordPrefix: (prefix?.isEmpty ?? true) ? nil : prefix,
                        endOfWordSuffix: (suffix?.isEmpty ?? true) ? nil : suffix, maxId: maxId)
    }

    /// The `<0xNN>` spelling of a byte.
    static func byteToken(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    /// Longest piece whose result is cached; long pieces are rare and would bloat the cache.
    static let maxCachedLength = 256

    /// Appends the ids of one pre-tokenized piece to `out`.
    func tokenize(_ piece: [Unicode.Scalar], into out: inout [Int], cache: inout [[Unicode.Scalar]: [Int]]) {
        if piece.isEmpty { return }
        if ignoreMerges {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: piece)
            if let id = vocab[String(view)] { out.append(id); return }
        }
        let cacheable = piece.count <= BPEModel.maxCachedLength
        if cacheable, let hit = cache[piece] { out.append(contentsOf: hit); return }
        let start = out.count
        merge(word: initialSymbols(piece), into: &out)
        if cacheable { cache[piece] = Array(out[start...]) }
    }

    /// The ids of the characters of a piece before any merge, with byte fallback and unknown
    /// handling as the `tokenizers` library does it.
    private func initialSymbols(_ piece: [Unicode.Scalar]) -> [Int] {
        var symbols: [Int] = []
        symbols.reserveCapacity(piece.count)
        var pendingUnk = false
        let slowPath = continuingSubwordPrefix != nil || endOfWordSuffix != nil
        for (i, scalar) in piece.enumerated() {
            var id: Int?
            if slowPath {
                var s = i > 0 ? (continuingSubwordPrefix ?? "") : ""
                s.unicodeScalars.append(scalar)
                if i == piece.count - 1 { s += endOfWordSuffix ?? "" }
                id = vocab[s]
            } else {
                id = charIds[scalar.value]
            }
            if let id {
                if pendingUnk, let unkId { symbols.append(unkId) }
                pendingUnk = false
                symbols.append(id)
                continue
            }
            if !byteFallbackIds.isEmpty {
                var utf8: [Int] = []
                var complete = true
                for b in String(Character(scalar)).utf8 {
                    let fid = byteFallbackIds[Int(b)]
                    if fid < 0 { complete = false; break }
                    utf8.append(fid)
                }
                if complete { symbols.append(contentsOf: utf8); continue }
            }
            guard let unkId else { continue }
            if pendingUnk && !fuseUnk { symbols.append(unkId) }
            pendingUnk = true
        }
        if pendingUnk, let unkId { symbols.append(unkId) }
        return symbols
    }

    /// Applies merges lowest rank first (leftmost on ties) using a heap over a linked list of
    /// symbols, so long pieces cost O(n log n).
    private func merge(word ids: [Int], into out: inout [Int]) {
        let n = ids.count
        if n < 2 { out.append(contentsOf: ids); return }
        var id = ids
        var next = [Int](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = i + 1 < n ? i + 1 : -1 }
            count = n
        }
        var prev = [Int](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = i - 1 }
            count = n
        }
        var heap = MinHeap<UInt64>()
        heap.reserve(n)
        for i in 0..<(n - 1) {
            if let m = merges[UInt64(id[i]) << 32 | UInt64(id[i + 1])] {
                heap.push((m >> 32) << 32 | UInt64(i))
            }
        }
        while let top = heap.pop() {
            let rank = top >> 32
            let pos = Int(top & 0xFFFF_FFFF)
            guard id[pos] >= 0 else { continue }
            let right = next[pos]
            guard right >= 0 else { continue }
            guard let m = merges[UInt64(id[pos]) << 32 | UInt64(id[right])], m >> 32 == rank else { continue }
            id[pos] = Int(m & 0xFFFF_FFFF)
            id[right] = -1
            let after = next[right]
            next[pos] = after
            if after >= 0 { prev[after] = pos }
            let before = prev[pos]
            if before >= 0, let mb = merges[UInt64(id[before]) << 32 | UInt64(id[pos])] {
                heap.push((mb >> 32) << 32 | UInt64(before))
            }
            if after >= 0, let ma = merges[UInt64(id[pos]) << 32 | UInt64(id[after])] {
                heap.push((ma >> 32) << 32 | UInt64(pos))
            }
        }
        var i = 0
        while i >= 0 { out.append(id[i]); i = next[i] }
    }
}
