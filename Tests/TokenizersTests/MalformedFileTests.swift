import Foundation
import Testing
@testable import Tokenizers

/// Bad tokenizer.json files give typed errors that name the file and the field; none crash.
@Suite("Malformed tokenizer files")
struct MalformedFileTests {
    static let minimal = """
    {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}}
    """

    static func load(_ json: String) throws(TokenizerError) -> Tokenizer {
        try Tokenizer(data: Data(json.utf8), source: "tok.json")
    }

    static func error(_ json: String) -> TokenizerError? {
        do { _ = try load(json); return nil } catch { return error }
    }

    @Test("the minimal file loads and merges")
    func minimalLoads() throws {
        let tok = try Self.load(Self.minimal)
        #expect(tok.encode("abab") == [2, 2])
        #expect(tok.vocabSize == 3)
    }

    @Test("a line break inside a quoted value stays escaped in the error (found by a million-input fuzz run)")
    func quotedValuesStayOnOneLine() throws {
        for value in ["BPE\\n", "BPE\\u2028x", "\\r"] {
            let description = try #require(Self.error("{\"model\": {\"type\": \"\(value)\"}}")).description
            let oneLine = !description.contains(where: \.isNewline)
            #expect(oneLine, "\(description.debugDescription)")
            #expect(description.hasPrefix("tok.json: model.type: unsupported"))
        }
    }

    @Test("a line-break or control byte where a value belongs keeps the error on one line (found by fuzzing)")
    func oddBytesStayOnOneLine() throws {
        for byte: UInt8 in [0x0B, 0x0C, 0x85, 0x00, 0xE2] {
            let data = Data("{\"model\": ".utf8) + Data([byte]) + Data("}".utf8)
            let description = try #require(Self.errorOf(data)).description
            let oneLine = !description.contains(where: \.isNewline)
            #expect(oneLine, "\(description.debugDescription)")
            let expected = "unexpected character byte 0x" + String(byte, radix: 16, uppercase: true)
            #expect(description.contains(expected))
        }
        let escape = try #require(Self.errorOf(Data("{\"a\\\u{85}\": 1}".utf8)))
        let escapeOneLine = !escape.description.contains(where: \.isNewline)
        #expect(escapeOneLine)
        for breaker in ["\\u2028", "\\u2029", "\\u0085"] {
            let json = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\", \"x" + breaker + "\"]]}}"
            let merge = try #require(Self.error(json))
            let mergeOneLine = !merge.description.contains(where: \.isNewline)
            #expect(mergeOneLine, "\(merge.description.debugDescription)")
            #expect(merge.description.contains("token \"x" + breaker + "\" is not in the vocabulary"))
        }
        let printable = try #require(Self.errorOf(Data("{\"model\": x}".utf8))).description
        #expect(printable.contains("unexpected character 'x'"))
    }

    static func errorOf(_ data: Data) -> TokenizerError? {
        do { _ = try Tokenizer(data: data, source: "tok.json"); return nil } catch { return error }
    }

    @Test("truncated JSON at every length is a typed error")
    func truncated() throws {
        let full = try String(decoding: Fixtures.data("gpt2.json"), as: UTF8.self)
        let bytes = Array(full.utf8)
        for cut in stride(from: 0, to: bytes.count - 2, by: max(1, bytes.count / 97)) {
            let error = Self.error(String(decoding: bytes[..<cut], as: UTF8.self))
            #expect(error != nil, "cut at \(cut) loaded")
            #expect(error?.description.hasPrefix("tok.json: ") == true)
        }
        guard case .malformedJSON(let file, let offset, _)? = Self.error(String(decoding: bytes[..<200], as: UTF8.self)) else {
            Issue.record("expected malformedJSON"); return
        }
        #expect(file == "tok.json")
        #expect(offset == 200)
    }

    @Test("merges referencing unknown tokens name the merge")
    func unknownMergeToken() {
        let e = Self.error(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}}"#)
        #expect(e?.description == #"tok.json: model.merges[0]: merged token "ab" is not in the vocabulary"#)
        let e2 = Self.error(#"{"model": {"type": "BPE", "vocab": {"a": 0, "ab": 1}, "merges": ["a b", "a c"]}}"#)
        #expect(e2 == .invalidField(file: "tok.json", path: "model.merges[0]", reason: #"token "b" is not in the vocabulary"#))
    }

    @Test("wrong types name the field")
    func wrongTypes() {
        #expect(Self.error(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}}"#)?.description
                == "tok.json: model.merges[0]: expected a pair")
        #expect(Self.error(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}}"#)?.description
                == "tok.json: model.merges[0]: expected a pair, found a number")
        #expect(Self.error(#"{"model": {"type": "BPE", "vocab": {"a": "zero"}}}"#)?.description
                == #"tok.json: model.vocab["a"]: expected an integer, found a string"#)
        #expect(Self.error(#"{"model": {"type": "BPE", "vocab": []}}"#)?.description
                == "tok.json: model.vocab: expected an object, found an array")
        #expect(Self.error(#"{"model": {"type": "BPE", "vocab": {"a": -1}}}"#)?.description
                == #"tok.json: model.vocab["a"]: negative token id -1"#)
        #expect(Self.error(#"{"added_tokens": [{"id": 0}], "model": {"type": "BPE", "vocab": {}}}"#)?.description
                == "tok.json: added_tokens[0].content: missing")
        #expect(Self.error(#"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}, "model": {"vocab": {}}}"#)?.description
                == "tok.json: pre_tokenizer.pattern.Regex: regex does not compile")
        #expect(Self.error(#"{"normalizer": {"type": "Sequence", "normalizers": [{"type": "Frobnicate"}]}, "model": {"vocab": {}}}"#)?.description
                == "tok.json: normalizer.normalizers[0].type: unsupported normalizer 'Frobnicate'")
        #expect(Self.error(#"{"model": {"type": "Unigram", "vocab": []}}"#)?.description
                == "tok.json: model.type: unsupported model 'Unigram'")
        #expect(Self.error(#"[1, 2]"#)?.description == "tok.json: (top level): expected an object, found an array")
        #expect(Self.error(#"{}"#)?.description == "tok.json: model: missing")
        #expect(Self.error(#"{"model": {"vocab": {"a": 0}, "unk_token": "<unk>"}}"#)?.description
                == #"tok.json: model.unk_token: unk token "<unk>" is not in the vocabulary"#)
        #expect(Self.error(#"{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}, "model": {"vocab": {}}}"#)?.description
                == "tok.json: post_processor.single[0].SpecialToken.id: '<s>' is not in special_tokens")
    }

    @Test("huge vocabulary claims are refused before allocating")
    func hugeClaims() {
        #expect(Self.error(#"{"model": {"type": "BPE", "vocab": {"a": 99999999999}}}"#)
                == .limitExceeded(file: "tok.json", path: #"model.vocab["a"]"#,
                                  reason: "token id 99999999999 exceeds the limit of \(TokenizerLimits.maxVocabulary)"))
        let e = Self.error(#"{"added_tokens": [{"id": 4611686018427387904, "content": "<x>", "special": true}], "model": {"vocab": {}}}"#)
        guard case .limitExceeded(_, let path, _)? = e else { Issue.record("expected limitExceeded, got \(String(describing: e))"); return }
        #expect(path == "added_tokens[0].id")
        let long = String(repeating: "a", count: TokenizerLimits.maxTokenBytes + 1)
        guard case .limitExceeded(_, let p2, _)? = Self.error(#"{"model": {"vocab": {"\#(long)": 0}}}"#) else {
            Issue.record("expected limitExceeded for a long token"); return
        }
        #expect(p2.hasPrefix("model.vocab["))
    }

    @Test("invalid JSON syntax reports the byte offset")
    func syntax() {
        #expect(Self.error(#"{"model": {"vocab": {"a": 0,}}}"#) == .malformedJSON(file: "tok.json", offset: 28, reason: "expected a string key"))
        #expect(Self.error("{\"model\": \"\u{01}\"}")?.description == "tok.json: invalid JSON at byte 11: control character in a string")
        #expect(Self.error(String(repeating: "[", count: 10_000))?.description.contains("nesting deeper") == true)
        #expect(Self.error(#"{"a": "\ud800"}"#)?.description.contains("surrogate") == true)
        #expect(Self.error(#"{"a": 1} x"#)?.description.contains("after the top-level value") == true)
    }

    @Test("a missing file is an unreadable error naming it")
    func missingFile() {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("no-such-tokenizer.json")
        #expect(throws: TokenizerError.self) { try Tokenizer(contentsOf: url) }
        do { _ = try Tokenizer(contentsOf: url) } catch {
            #expect(error.description.hasPrefix("no-such-tokenizer.json: cannot read"))
        }
    }
}
