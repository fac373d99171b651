import Foundation
import Testing
@testable import Tokenizers

/// The trainer is deterministic and its output encodes exactly as the reference library
/// encodes it (ids recorded from the committed trained.json).
@Suite("BPE trainer")
struct BPETrainerTests {
    /// The options the committed trained.json was made with
    /// (`safetune tokenizer train corpus.txt --vocab 600 --special "<|endoftext|>" --special "<|pad|>"`).
    static let trainer = BPETrainer(vocabSize: 600, minFrequency: 2, specialTokens: ["<|endoftext|>", "<|pad|>"])

    static func corpus() throws -> String {
        try #require(String(data: Fixtures.data("corpus.txt"), encoding: .utf8))
    }

    @Test("same corpus gives byte-identical tokenizer.json, equal to the committed one")
    func deterministic() throws {
        let text = try Self.corpus()
        let first = try Self.trainer.train(texts: [text])
        let second = try Self.trainer.train(texts: [text])
        #expect(first == second)
        #expect(first == (try Fixtures.data("trained.json")))
    }

    @Test("reference ids for the committed trained tokenizer")
    func referenceIds() throws {
        let tokenizer = try Fixtures.tokenizer("trained")
        let expected = try Fixtures.expected("trained", file: "trained-expected.json")
        #expect(tokenizer.vocabSize == expected.vocabSize)
        for (text, c) in zip(expected.texts, expected.cases) {
            #expect(tokenizer.encode(text) == c.ids, "\(text.debugDescription)")
            #expect(tokenizer.decode(c.idsPlain) == c.decoded, "\(text.debugDescription)")
            #expect(tokenizer.decode(c.ids, skipSpecialTokens: true) == c.decodedSkip)
        }
    }

    @Test("special tokens come first, merges make frequent words single tokens, text round-trips")
    func structure() throws {
        let text = String(repeating: "the cat sat on the mat. ", count: 20)
        let tokenizer = try BPETrainer(vocabSize: 300, specialTokens: ["<eos>"]).trainTokenizer(texts: [text])
        #expect(tokenizer.id(of: "<eos>") == 0)
        #expect(tokenizer.specialTokenIds == [0])
        #expect(tokenizer.vocabSize <= 300 && tokenizer.vocabSize > 257)
        let ids = tokenizer.encode(" the cat<eos>")
        #expect(ids.count == 3)
        #expect(ids.last == 0)
        #expect(tokenizer.decode(ids) == " the cat<eos>")
        let other = "Zebra! 🦓 ünïcode\n\tdone"
        #expect(tokenizer.decode(tokenizer.encode(other)) == other)
    }

    @Test("invalid options are typed errors")
    func invalidOptions() {
        #expect(throws: TokenizerError.self) { try BPETrainer(vocabSize: 100).train(texts: ["abc"]) }
        #expect(throws: TokenizerError.self) { try BPETrainer(vocabSize: 300, minFrequency: 0).train(texts: ["abc"]) }
        #expect(throws: TokenizerError.self) { try BPETrainer(vocabSize: 300, specialTokens: [""]).train(texts: ["abc"]) }
    }
}
