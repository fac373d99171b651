import Foundation

/// A tokenizer loaded from a Hugging Face `tokenizer.json` (BPE model: byte-level as in
/// GPT-2, Llama-3 and Qwen2, or SentencePiece-style with byte fallback as in Llama-2).
/// Immutable and safe to share between threads.
public final class Tokenizer: Sendable {
    /// Where the tokenizer came from (file name), used in error messages.
    public let source: String
    private let data: Data
    private let model: BPEModel
    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer?
    private let postProcessor: PostProcessor?
    private let decoder: Decoder?
    private let added: AddedVocabulary
    private let idToToken: [String?]
    private let addedIds: [String: Int]

    /// One past the largest token id (model vocabulary and added tokens): the embedding size.
    public let vocabSize: Int
    /// Beginning-of-sequence id: the first special token the post-processor puts before the
    /// text, else a conventionally named special token.
    public let bosTokenId: Int?
    /// End-of-sequence id: the last special token the post-processor puts after the text,
    /// else a conventionally named special token.
    public let eosTokenId: Int?
    /// Ids of the added tokens marked special (skipped by `decode(_:skipSpecialTokens: true)`).
    public let specialTokenIds: Set<Int>
    /// The added tokens, in file order.
    public var addedTokens: [AddedToken] { added.tokens }
    /// The model's chat template (Jinja text) when its file ships one; Hugging Face keeps
    /// it beside the tokenizer, and so does SafeTune (`ChatTemplate` recognises it).
    public let chatTemplate: String?

    private static let bosNames = ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>"]
    private static let eosNames = ["</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>"]

    /// Parses tokenizer.json bytes; `source` names the file in errors.
    public init(data: Data, source: String, chatTemplate: String? = nil) throws(TokenizerError) {
        guard data.count <= TokenizerLimits.maxFileBytes else {
            throw .limitExceeded(file: source, path: "(file)", reason: "\(data.count) bytes exceed the limit of \(TokenizerLimits.maxFileBytes)")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(data) } catch { throw .malformedJSON(file: source, offset: error.offset, reason: error.reason) }
        let root = JSONNode(value: json, path: "", file: source)
        guard case .object = json else { throw root.invalid("expected an object, found \(json.kindName)") }

        self.source = source
        self.data = data
        self.chatTemplate = chatTemplate
        let normalizer = try root.optional("normalizer").map { (n) throws(TokenizerError) in try Normalizer.parse(n) }
        self.normalizer = normalizer
        preTokenizer = try root.optional("pre_tokenizer").map { (n) throws(TokenizerError) in try PreTokenizer.parse(n) }
        postProcessor = try root.optional("post_processor").map { (n) throws(TokenizerError) in try PostProcessor.parse(n) }
        decoder = try root.optional("decoder").map { (n) throws(TokenizerError) in try Decoder.parse(n) }
        model = try BPEModel.parse(root.required("model"))
        let addedTokens = try AddedVocabulary.parse(root.optional("added_tokens"))
        added = AddedVocabulary(tokens: addedTokens, normalizer: normalizer)

        var size = model.maxId + 1
        for t in addedTokens { size = max(size, t.id + 1) }
        vocabSize = size
        var table = [String?](repeating: nil, count: size)
        for (token, id) in model.vocab { table[id] = token }
        var addedIds: [String: Int] = [:]
        for t in addedTokens {
            table[t.id] = t.content
            addedIds[t.content] = t.id
        }
        idToToken = table
        self.addedIds = addedIds
        specialTokenIds = Set(addedTokens.filter(\.special).map(\.id))

        let boundary: (first: Int?, last: Int?) = postProcessor?.boundaryIds ?? (nil, nil)
        let specialByName = Dictionary(addedTokens.filter(\.special).map { ($0.content, $0.id) }, uniquingKeysWith: { a, _ in a })
        bosTokenId = boundary.first ?? Tokenizer.bosNames.lazy.compactMap { specialByName[$0] }.first
        eosTokenId = boundary.last ?? Tokenizer.eosNames.lazy.compactMap { specialByName[$0] }.first
    }

    /// Loads a tokenizer.json file.
    public convenience init(contentsOf url: URL) throws(TokenizerError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadable(file: url.lastPathComponent, reason: error.localizedDescription)
        }
        try self.init(data: data, source: url.lastPathComponent)
    }

    /// The tokenizer.json this tokenizer was built from (store it next to a model).
    public func jsonData() -> Data { data }

    /// The id of a token string (added tokens first, then the model vocabulary).
    public func id(of token: String) -> Int? { addedIds[token] ?? model.vocab[token] }

    /// The token string of an id.
    public func token(of id: Int) -> String? {
        guard id >= 0, id < idToToken.count else { return nil }
        return idToToken[id]
    }

    /// Token ids of `text`; `addSpecialTokens` applies the post-processor (e.g. a leading `<s>`).
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        var cache: [[Unicode.Scalar]: [Int]] = [:]
        let scalars = Array(text.unicodeScalars)
        for segment in added.split(scalars, normalizedSet: false) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let range):
                var piece: [Unicode.Scalar]
                if let normalizer {
                    var view = String.UnicodeScalarView()
                    view.append(contentsOf: scalars[range])
                    piece = Array(normalizer.apply(String(view)).unicodeScalars)
                } else {
                    piece = Array(scalars[range])
                }
                let atStart = range.lowerBound == 0
                if added.hasNormalizedTokens {
                    for sub in added.split(piece, normalizedSet: true) {
                        switch sub {
                        case .token(let id): ids.append(id)
                        case .text(let r): encodePiece(Array(piece[r]), atStart: atStart && r.lowerBound == 0, into: &ids, cache: &cache)
                        }
                    }
                } else {
                    encodePiece(piece, atStart: atStart, into: &ids, cache: &cache)
                }
                piece = []
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    private func encodePiece(_ scalars: [Unicode.Scalar], atStart: Bool, into ids: inout [Int], cache: inout [[Unicode.Scalar]: [Int]]) {
        guard !scalars.isEmpty else { return }
        var pieces = [Piece(scalars: scalars, atStart: atStart)]
        preTokenizer?.apply(&pieces)
        for p in pieces { model.tokenize(p.scalars, into: &ids, cache: &cache) }
    }

    /// The token strings of `ids` (unknown ids are skipped).
    public func tokens(of ids: [Int]) -> [String] { ids.compactMap { token(of: $0) } }

    /// Text of `ids`; unknown ids are skipped, special tokens too when `skipSpecialTokens`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let tokens = ids.compactMap { id -> String? in
            if skipSpecialTokens && specialTokenIds.contains(id) { return nil }
            return token(of: id)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    /// A tokenizer with `specialToken` added as a special added token, and its id. An
    /// existing special token is returned as is; an existing plain token keeps its id and
    /// becomes special; a new token gets id `vocabSize`. `jsonData()` of the result holds
    /// the new entry in `added_tokens`.
    /// - Precondition: `specialToken` is non-empty and at most `TokenizerLimits.maxTokenBytes` long.
    public func adding(specialToken: String) -> (Tokenizer, Int) {
        precondition(!specialToken.isEmpty && specialToken.utf8.count <= TokenizerLimits.maxTokenBytes,
                     "special token must be non-empty and at most \(TokenizerLimits.maxTokenBytes) bytes")
        if let existing = added.tokens.first(where: { $0.content == specialToken && $0.special }) {
            return (self, existing.id)
        }
        let newId = id(of: specialToken) ?? vocabSize
        let token = AddedToken(id: newId, content: specialToken, special: true, lstrip: false, rstrip: false,
                               singleWord: false, normalized: false)
        let entry = JSONValue.object([
            ("id", .int(newId)), ("content", .string(specialToken)), ("single_word", .bool(false)),
            ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(true)),
        ])
        let root: JSONValue
        do { root = try JSONParser.parse(data) } catch {
            // These bytes parsed when this tokenizer was built; parsing is deterministic.
            preconditionFailure("\(source): stored tokenizer.json no longer parses")
        }
        var pairs: [(String, JSONValue)] = []
        if case .object(let p) = root { pairs = p }
        if let index = pairs.firstIndex(where: { $0.0 == "added_tokens" }), case .array(var list) = pairs[index].1 {
            list.removeAll { $0["content"] == .string(specialToken) }
            list.append(entry)
            pairs[index].1 = .array(list)
        } else {
            pairs.removeAll { $0.0 == "added_tokens" }
            pairs.insert(("added_tokens", .array([entry])), at: 0)
        }
        let tokens = added.tokens.filter { $0.content != specialToken } + [token]
        return (Tokenizer(extending: self, addedTokens: tokens, data: JSONValue.object(pairs).serialized()), newId)
    }

    /// A copy of `base` with a different added vocabulary (used by `adding(specialToken:)`).
    private init(extending base: Tokenizer, addedTokens: [AddedToken], data: Data) {
        source = base.source
        self.data = data
        chatTemplate = base.chatTemplate
        model = base.model
        normalizer = base.normalizer
        preTokenizer = base.preTokenizer
        postProcessor = base.postProcessor
        decoder = base.decoder
        added = AddedVocabulary(tokens: addedTokens, normalizer: base.normalizer)
        var table = base.idToToken
        var addedIds: [String: Int] = [:]
        for t in addedTokens {
            if t.id >= table.count { table.append(contentsOf: repeatElement(nil, count: t.id + 1 - table.count)) }
            table[t.id] = t.content
            addedIds[t.content] = t.id
        }
        idToToken = table
        self.addedIds = addedIds
        vocabSize = table.count
        specialTokenIds = Set(addedTokens.filter(\.special).map(\.id))
        bosTokenId = base.bosTokenId
        eosTokenId = base.eosTokenId
    }
}
