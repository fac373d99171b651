import Engine
import Foundation
import Tokenizers

/// How to generate: length, sampling, stopping, and what to report per step.
public struct GenerationOptions: Sendable {
    /// Most tokens to generate.
    public var maxTokens: Int
    /// Next-token choice.
    public var sampler: Sampler
    /// Seed for the sampler's random numbers.
    public var seed: UInt64
    /// Token ids that end generation (kept in the output, as Hugging Face does).
    public var stopTokens: Set<Int>
    /// Also stop at the model's / tokenizer's end-of-sequence token.
    public var stopAtEndOfSequence: Bool
    /// Texts that end generation once the decoded output contains one (needs a tokenizer).
    public var stopStrings: [String]
    /// Decode with a KV cache (false recomputes the whole sequence every step).
    public var useCache: Bool
    /// Report each step's full logits row.
    public var returnLogits: Bool
    /// Report the log-probability of each chosen token (under the unscaled logits).
    public var returnLogprobs: Bool

    /// Options; the defaults decode greedily for up to 128 tokens, stopping at end-of-sequence.
    public init(maxTokens: Int = 128, sampler: Sampler = .greedy, seed: UInt64 = 0, stopTokens: Set<Int> = [],
                stopAtEndOfSequence: Bool = true, stopStrings: [String] = [], useCache: Bool = true,
                returnLogits: Bool = false, returnLogprobs: Bool = false) {
        self.maxTokens = maxTokens
        self.sampler = sampler
        self.seed = seed
        self.stopTokens = stopTokens
        self.stopAtEndOfSequence = stopAtEndOfSequence
        self.stopStrings = stopStrings
        self.useCache = useCache
        self.returnLogits = returnLogits
        self.returnLogprobs = returnLogprobs
    }
}

/// Why generation ended.
public enum StopReason: Equatable, Sendable, CustomStringConvertible {
    /// `maxTokens` were generated.
    case maxTokens
    /// A stop token (or end-of-sequence) was generated.
    case stopToken(Int)
    /// The decoded output contains a stop string.
    case stopString(String)
    /// The model's context is full.
    case contextFull
    /// The streaming callback asked to stop.
    case cancelled

    public var description: String {
        switch self {
        case .maxTokens: return "max_tokens"
        case let .stopToken(id): return "stop_token(\(id))"
        case let .stopString(s): return "stop_string(\(s.debugDescription))"
        case .contextFull: return "context_full"
        case .cancelled: return "cancelled"
        }
    }
}

/// One generated token, as passed to the streaming callback.
public struct GenerationStep: Sendable {
    /// Position among the generated tokens (0 first).
    public let index: Int
    /// The chosen token.
    public let token: Int
    /// Its log-probability under the unscaled logits.
    public let logprob: Float
    /// Text this token completed (empty while a multi-byte character is incomplete; nil without a tokenizer).
    public let textDelta: String?
}

/// What a generation produced.
public struct GenerationResult: Sendable {
    /// Generated token ids (the prompt excluded; a final stop token included).
    public var tokens: [Int]
    /// Decoded output, cut before a stop string; nil without a tokenizer.
    public var text: String?
    /// Why it ended.
    public var stopReason: StopReason
    /// Per generated token, its log-probability (when requested).
    public var logprobs: [Float]?
    /// Per generated token, the logits row it was chosen from (when requested).
    public var logits: [[Float]]?
}

/// Autoregressive generation from a `TransformerModel`: prompt in, tokens out, with
/// samplers, stop tokens and strings, and a streaming callback.
public final class Generator {
    /// The model generated from.
    public let model: TransformerModel
    /// Decodes text for stop strings and results; optional.
    public let tokenizer: Tokenizer?

    /// A generator; a tokenizer enables text prompts, stop strings and decoded output.
    public init(model: TransformerModel, tokenizer: Tokenizer? = nil) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Generates after `prompt` (token ids). `onStep` sees each token as it is chosen and
    /// returns false to stop.
    public func generate(prompt: [Int], options: GenerationOptions = .init(),
                         onStep: ((GenerationStep) -> Bool)? = nil) throws(ModelError) -> GenerationResult {
        if prompt.isEmpty { throw .emptyInput }
        let limit = model.config.maxPositions
        if prompt.count > limit { throw .sequenceTooLong(length: prompt.count, limit: limit) }
        let session = DecodingSession(model: model, maxLength: prompt.count + max(options.maxTokens, 0), useCache: options.useCache)
        var stops = options.stopTokens
        if options.stopAtEndOfSequence {
            if let eos = model.config.eosTokenId { stops.insert(eos) }
            if let eos = tokenizer?.eosTokenId { stops.insert(eos) }
        }
        var rng = SeededRandom(seed: options.seed)
        var result = GenerationResult(tokens: [], text: tokenizer == nil ? nil : "", stopReason: .maxTokens,
                                      logprobs: options.returnLogprobs ? [] : nil, logits: options.returnLogits ? [] : nil)
        if options.maxTokens <= 0 { return result }
        var emitted = ""
        var logits = try session.append(prompt)
        while result.tokens.count < options.maxTokens {
            let token = options.sampler.sample(logits, rng: &rng)
            let logprob = Self.logSoftmax(logits, at: token)
            result.tokens.append(token)
            result.logprobs?.append(logprob)
            result.logits?.append(logits)
            var delta: String?
            if let tokenizer {
                let text = tokenizer.decode(result.tokens)
                // Hold back text ending in an incomplete multi-byte character; what is new is
                // whatever follows the characters already passed on.
                if !text.hasSuffix("\u{FFFD}") {
                    delta = String(text.dropFirst(emitted.count))
                    emitted = text
                } else {
                    delta = ""
                }
                result.text = text
                if let hit = Self.firstStop(in: text, options.stopStrings) {
                    result.text = String(text[..<hit.range.lowerBound])
                    result.stopReason = .stopString(hit.stop)
                    _ = onStep?(GenerationStep(index: result.tokens.count - 1, token: token, logprob: logprob, textDelta: delta))
                    return result
                }
            }
            if let onStep, !onStep(GenerationStep(index: result.tokens.count - 1, token: token, logprob: logprob, textDelta: delta)) {
                result.stopReason = .cancelled
                return result
            }
            if stops.contains(token) {
                result.stopReason = .stopToken(token)
                return result
            }
            if result.tokens.count == options.maxTokens { break }
            if session.tokens.count >= session.maxLength {
                result.stopReason = .contextFull
                return result
            }
            logits = try session.append([token])
        }
        return result
    }

    /// Generates after `prompt` text, encoded with the tokenizer (special tokens added).
    public func generate(prompt: String, options: GenerationOptions = .init(),
                         onStep: ((GenerationStep) -> Bool)? = nil) throws(ModelError) -> GenerationResult {
        guard let tokenizer else { throw .tokenizerRequired }
        return try generate(prompt: tokenizer.encode(prompt), options: options, onStep: onStep)
    }

    /// log softmax(logits)[index], computed stably.
    public static func logSoftmax(_ logits: [Float], at index: Int) -> Float {
        var m = -Float.infinity
        for x in logits { m = max(m, x) }
        var s: Double = 0
        for x in logits { s += Double(expf(x - m)) }
        return logits[index] - m - Float(Foundation.log(s))
    }

    private static func firstStop(in text: String, _ stops: [String]) -> (stop: String, range: Range<String.Index>)? {
        var best: (stop: String, range: Range<String.Index>)?
        for stop in stops where !stop.isEmpty {
            if let r = text.range(of: stop), best == nil || r.lowerBound < best!.range.lowerBound { best = (stop, r) }
        }
        return best
    }
}
