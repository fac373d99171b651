import Foundation

/// The tokenizer stored in a GGUF file's `tokenizer.ggml.*` metadata, rebuilt as the
/// `tokenizer.json` that Hugging Face's `tokenizers` would load for the same model, and
/// back again for export.
///
/// Byte-level BPE (`tokenizer.ggml.model = gpt2`) only. The pre-tokenizer follows
/// `tokenizer.ggml.pre` as llama.cpp does; an unknown value is an error, never a guess.
enum GGUFTokenizer {
    /// The `tokenizer.ggml.pre` values SafeTune knows; a file without the key is GPT-2's.
    static let knownPre = ["gpt2", "llama-bpe", "qwen2", "smollm"]

    /// The `tokenizer.json` pre-tokenizer that a `tokenizer.ggml.pre` value stands for.
    static func preTokenizer(_ pre: String) -> [String: Any]? {
        func byteLevel(regex: Bool) -> [String: Any] {
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex]
        }
        func split(_ regex: String) -> [String: Any] {
            ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false]
        }
        let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        switch pre {
        // GPT-2's regex inside ByteLevel.
        case "gpt2": return byteLevel(regex: true)
        // SmolLM: every digit alone, then GPT-2's regex.
        case "smollm": return ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel(regex: true)]]
        case "llama-bpe": return ["type": "Sequence", "pretokenizers": [split(llama3), byteLevel(regex: false)]]
        case "qwen2": return ["type": "Sequence", "pretokenizers": [split(qwen2), byteLevel(regex: false)]]
        default: return nil
        }
    }

    /// GGUF token types (llama.cpp's `llama_token_type`).
    enum TokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// `tokenizer.json` bytes from the file's metadata; `vocabSize` is the embedding's row count.
    static func tokenizerJSON(_ file: GGUFFile, vocabSize: Int) throws(GGUFError) -> Data {
        let path = file.path
        guard let model = try file.string("tokenizer.ggml.model") else {
            throw .metadata(file: path, key: "tokenizer.ggml.model", reason: "is missing: the file has no tokenizer")
        }
        guard model == "gpt2" else {
            throw .unsupported(file: path, reason: "tokenizer.ggml.model '\(model)'; SafeTune imports byte-level BPE ('gpt2') tokenizers")
        }
        let pre = try file.string("tokenizer.ggml.pre") ?? "gpt2"
        guard let preTokenizer = preTokenizer(pre) else {
            throw .metadata(file: path, key: "tokenizer.ggml.pre", reason: "'\(pre)' is not known (SafeTune knows \(knownPre.joined(separator: ", ")))")
        }
        guard let tokens = try file.strings("tokenizer.ggml.tokens") else {
            throw .metadata(file: path, key: "tokenizer.ggml.tokens", reason: "is missing")
        }
        guard tokens.count == vocabSize else {
            throw .metadata(file: path, key: "tokenizer.ggml.tokens", reason: "has \(tokens.count) tokens but the embedding has \(vocabSize) rows")
        }
        let types = try file.ints("tokenizer.ggml.token_type") ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw .metadata(file: path, key: "tokenizer.ggml.token_type", reason: "has \(types.count) entries for \(tokens.count) tokens")
        }
        let merges = try file.strings("tokenizer.ggml.merges") ?? []

        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() {
            // The first id wins for duplicated text, as in tokenizers' vocab.
            if vocab[token] == nil { vocab[token] = id }
            let type = types.isEmpty ? TokenType.normal : TokenType(rawValue: types[id]) ?? .normal
            if type == .control || type == .userDefined {
                added.append(["id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": type == .userDefined, "special": type == .control])
            }
        }
        var pairs: [[String]] = []
        pairs.reserveCapacity(merges.count)
        for (i, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw .metadata(file: path, key: "tokenizer.ggml.merges", reason: "entry \(i) '\(merge)' is not two tokens separated by one space")
            }
            pairs.append([String(parts[0]), String(parts[1])])
        }

        var json: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(), "padding": NSNull(), "normalizer": NSNull(),
            "added_tokens": added,
            "pre_tokenizer": preTokenizer,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": pairs] as [String: Any],
        ]
        // The BOS id goes in front when the file asks for it, as llama.cpp's tokenizer does.
        if try file.bool("tokenizer.ggml.add_bos_token") == true, let bos = try file.int("tokenizer.ggml.bos_token_id") {
            guard bos >= 0, bos < tokens.count else {
                throw .metadata(file: path, key: "tokenizer.ggml.bos_token_id", reason: "\(bos) is not a token id")
            }
            let name = tokens[bos]
            json["post_processor"] = ["type": "TemplateProcessing",
                                      "single": [["SpecialToken": ["id": name, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                                      "pair": [["Sequence": ["id": "A", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
                                      "special_tokens": [name: ["id": name, "ids": [bos], "tokens": [name]]]] as [String: Any]
        } else {
            json["post_processor"] = NSNull()
        }
        do {
            return try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
        } catch {
            throw .invalid(file: path, reason: "cannot encode the tokenizer as JSON: \(error)")
        }
    }

    /// The `tokenizer.ggml.*` metadata for a byte-level BPE `tokenizer.json` (the inverse of
    /// `tokenizerJSON`): tokens in id order, their types, merges, the pre-tokenizer's name.
    static func metadata(_ data: Data, vocabSize: Int, file: String) throws(GGUFError) -> [(String, GGUFValue)] {
        func fail(_ reason: String) -> GGUFError { .unsupported(file: file, reason: "tokenizer: \(reason)") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = root["model"] as? [String: Any], model["type"] as? String == "BPE",
              let vocab = model["vocab"] as? [String: Int] else {
            throw fail("not a BPE tokenizer.json")
        }
        // Offsets do not change ids, so `trim_offsets` does not take part in the comparison.
        func withoutOffsets(_ value: Any) -> Any {
            if let object = value as? [String: Any] {
                return object.filter { $0.key != "trim_offsets" }.mapValues(withoutOffsets)
            }
            if let array = value as? [Any] { return array.map(withoutOffsets) }
            return value
        }
        let found = withoutOffsets(root["pre_tokenizer"] ?? NSNull())
        guard let pre = knownPre.first(where: { name in
            (withoutOffsets(preTokenizer(name)!) as? NSDictionary)?.isEqual(found) ?? false
        }) else {
            throw fail("its pre-tokenizer has no GGUF name (SafeTune writes \(knownPre.joined(separator: ", ")))")
        }
        var tokens = [String?](repeating: nil, count: vocabSize)
        var types = [GGUFValue](repeating: .int32(Int32(TokenType.normal.rawValue)), count: vocabSize)
        for (token, id) in vocab where id >= 0 && id < vocabSize { tokens[id] = token }
        for added in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let id = added["id"] as? Int, id >= 0, id < vocabSize, let content = added["content"] as? String else { continue }
            tokens[id] = content
            types[id] = .int32(Int32((added["special"] as? Bool ?? false ? TokenType.control : .userDefined).rawValue))
        }
        var names: [GGUFValue] = []
        names.reserveCapacity(vocabSize)
        for (id, token) in tokens.enumerated() {
            // Ids the tokenizer never produces (embedding rows past its vocabulary) are unused.
            if token == nil { types[id] = .int32(Int32(TokenType.unused.rawValue)) }
            names.append(.string(token ?? "[PAD\(id)]"))
        }
        var merges: [GGUFValue] = []
        for merge in model["merges"] as? [Any] ?? [] {
            if let pair = merge as? [String], pair.count == 2 {
                merges.append(.string(pair[0] + " " + pair[1]))
            } else if let text = merge as? String {
                merges.append(.string(text))
            } else {
                throw fail("a merge is neither a pair nor a string")
            }
        }
        var addBOS = false
        if let post = root["post_processor"] as? [String: Any], post["type"] as? String == "TemplateProcessing",
           let single = post["single"] as? [[String: Any]], single.first?["SpecialToken"] != nil {
            addBOS = true
        }
        return [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string, names)),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
            ("tokenizer.ggml.merges", .array(.string, merges)),
            ("tokenizer.ggml.add_bos_token", .bool(addBOS)),
        ]
    }
}
