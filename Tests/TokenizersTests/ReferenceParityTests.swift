import Foundation
import Testing
@testable import Tokenizers

/// Every fixture tokenizer must give exactly the ids and decodes of the reference library.
@Suite("Reference parity")
struct ReferenceParityTests {
    static let kinds = ["gpt2", "gpt2_legacy", "llama3", "qwen2", "llama2", "metaspace", "bert_bpe"]

    @Test("ids match the reference, with and without special tokens", arguments: kinds)
    func ids(kind: String) throws {
        let tokenizer = try Fixtures.tokenizer(kind)
        let expected = try Fixtures.expected(kind)
        #expect(expected.cases.count == expected.texts.count)
        for (text, c) in zip(expected.texts, expected.cases) {
            #expect(tokenizer.encode(text, addSpecialTokens: true) == c.ids, "\(kind): \(text.debugDescription)")
            #expect(tokenizer.encode(text, addSpecialTokens: false) == c.idsPlain, "\(kind): \(text.debugDescription)")
        }
    }

    @Test("decodes match the reference", arguments: kinds)
    func decodes(kind: String) throws {
        let tokenizer = try Fixtures.tokenizer(kind)
        let expected = try Fixtures.expected(kind)
        for (text, c) in zip(expected.texts, expected.cases) {
            #expect(tokenizer.decode(c.idsPlain) == c.decoded, "\(kind): \(text.debugDescription)")
            #expect(tokenizer.decode(c.ids, skipSpecialTokens: true) == c.decodedSkip, "\(kind): \(text.debugDescription)")
        }
    }

    @Test("vocabulary size counts added tokens", arguments: kinds)
    func vocabSize(kind: String) throws {
        #expect(try Fixtures.tokenizer(kind).vocabSize == Fixtures.expected(kind).vocabSize)
    }
}
