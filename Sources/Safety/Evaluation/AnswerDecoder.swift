import Models
import Tokenizers

/// An answer decoded after a prompt.
public struct DecodedAnswer: Sendable, Equatable {
    /// Generated token ids (a refusal prefix inserted by a guard included).
    public var tokens: [Int]
    /// The decoded text of `tokens`, cut before the end-of-turn marker.
    public var text: String
    /// Whether a guard inserted its refusal prefix.
    public var guardTriggered: Bool

    /// An answer.
    public init(tokens: [Int], text: String, guardTriggered: Bool = false) {
        self.tokens = tokens
        self.text = text
        self.guardTriggered = guardTriggered
    }
}

/// Decodes answers for evaluation: plain generation, or SA-ESS guarded decoding
/// (`GuardedDecoder`), so every attack runs the same way with and without the signal.
public protocol AnswerDecoder: AnyObject {
    /// Whether this decoder applies a safety guard (reported with each attack).
    var isGuarded: Bool { get }
    /// The answer after each of `prompts` (token ids, chat template and BOS included, no
    /// CLS) with `options[i]`, decoded in batches; each is the answer to its prompt alone.
    func answers(prompts: [[Int]], options: [GenerationOptions]) throws(ModelError) -> [DecodedAnswer]
}

/// Plain autoregressive generation through `Generator`.
public final class PlainDecoder: AnswerDecoder {
    /// The generator used.
    public let generator: Generator

    /// A decoder for `model`, decoding text with `tokenizer`.
    public init(model: TransformerModel, tokenizer: Tokenizer) {
        generator = Generator(model: model, tokenizer: tokenizer)
    }

    public var isGuarded: Bool { false }

    public func answers(prompts: [[Int]], options: [GenerationOptions]) throws(ModelError) -> [DecodedAnswer] {
        try generator.generate(prompts: prompts, options: options).map { DecodedAnswer(tokens: $0.tokens, text: $0.text ?? "") }
    }
}
