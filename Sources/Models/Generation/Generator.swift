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

    /// The tokens that end generation: `stopTokens`, and with `stopAtEndOfSequence` the
    /// model's and the tokenizer's end-of-sequence tokens.
    public func endTokens(config: ModelConfig, tokenizer: Tokenizer?) -> Set<Int> {
        var stops = stopTokens
        if stopAtEndOfSequence {
            if let eos = config.eosTokenId { stops.insert(eos) }
            if let eos = tokenizer?.eosTokenId { stops.insert(eos) }
        }
        return stops
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
        try check(prompt)
        let session = DecodingSession(model: model, maxLength: prompt.count + max(options.maxTokens, 0), useCache: options.useCache)
        var sequence = Decoding(options: options, config: model.config, tokenizer: tokenizer)
        if options.maxTokens <= 0 { return sequence.result }
        var logits = try session.append(prompt)
        while true {
            if let stop = sequence.take(logits, tokenizer: tokenizer, onStep: onStep) {
                sequence.result.stopReason = stop
                return sequence.result
            }
            if session.tokens.count >= session.maxLength {
                sequence.result.stopReason = .contextFull
                return sequence.result
            }
            logits = try session.append([sequence.result.tokens.last!])
        }
    }

    /// Generates after each of `prompts` (with `options[i]` for prompt i), up to `batch`
    /// sequences at a time: each step feeds one token to every sequence still going, as one
    /// forward (`BatchedKVCache`), and a finished sequence's slot takes the next prompt.
    /// Results are those of `generate(prompt:options:)` one prompt at a time, up to float
    /// summation order (a matrix product over rows instead of one row): greedy answers are
    /// the same unless two tokens tie within rounding.
    public func generate(prompts: [[Int]], options: [GenerationOptions], batch: Int = Generator.defaultBatch)
        throws(ModelError) -> [GenerationResult] {
        precondition(options.count == prompts.count, "generate: \(options.count) options for \(prompts.count) prompts")
        for p in prompts { try check(p) }
        guard !prompts.isEmpty else { return [] }
        let capacity = min(model.config.maxPositions, zip(prompts, options).map { $0.count + max($1.maxTokens, 0) }.max()!)
        let cache = BatchedKVCache(config: model.config, batch: max(1, min(batch, prompts.count)), maxLength: capacity)
        var results = [GenerationResult?](repeating: nil, count: prompts.count)
        var running: [(prompt: Int, sequence: Decoding)?] = Array(repeating: nil, count: cache.slots.count)
        var queue = prompts.indices.makeIterator()
        let tape = Tape()

        /// Runs `slot`'s sequence on `logits`; a finished one leaves the slot for the next prompt.
        func take(_ logits: [Float], slot: Int) {
            guard var entry = running[slot] else { return }
            var stop = entry.sequence.take(logits, tokenizer: tokenizer, onStep: nil)
            if stop == nil && cache.slots[slot].remaining == 0 { stop = .contextFull }
            if let stop {
                entry.sequence.result.stopReason = stop
                results[entry.prompt] = entry.sequence.result
                running[slot] = nil
            } else {
                running[slot] = entry
            }
        }
        /// Fills free slots from the queue, each with its prompt's prefill (a batch-1 forward).
        func refill() {
            for slot in running.indices where running[slot] == nil {
                while running[slot] == nil, let i = queue.next() {
                    let sequence = Decoding(options: options[i], config: model.config, tokenizer: tokenizer)
                    guard options[i].maxTokens > 0 else { results[i] = sequence.result; continue }
                    let kv = cache.slots[slot]
                    kv.reset()
                    let ids = prompts[i].map { Int32(clamping: $0) }
                    let logits = tape.withoutGrad {
                        let hidden = model.hiddenStates(tape: tape, ids: ids, batch: 1, length: ids.count, cache: kv)
                        return model.logits(tape: tape, hidden: hidden, rows: [ids.count - 1]).value.scalars
                    }
                    tape.reset()
                    running[slot] = (i, sequence)
                    take(logits, slot: slot)
                }
            }
        }

        refill()
        while true {
            let fed = running.indices.filter { running[$0] != nil }
            if fed.isEmpty { break }
            cache.feed(fed)
            let ids = fed.map { Int32(clamping: running[$0]!.sequence.result.tokens.last!) }
            let logits = tape.withoutGrad {
                model.logits(tape: tape, hidden: model.hiddenStates(tape: tape, ids: ids, batch: fed.count, length: 1,
                                                                    mask: cache.stepMask(), cache: cache)).value
            }
            let vocab = logits.lastDim
            for (row, slot) in fed.enumerated() {
                take(Array(UnsafeBufferPointer(start: logits.data + row * vocab, count: vocab)), slot: slot)
            }
            tape.reset()
            refill()
        }
        return results.map { $0! }
    }

    /// Sequences decoded side by side by default: enough rows that each step's products run
    /// as matrix products, few enough that the slots' caches stay small.
    public static let defaultBatch = 32

    private func check(_ prompt: [Int]) throws(ModelError) {
        if prompt.isEmpty { throw .emptyInput }
        let limit = model.config.maxPositions
        if prompt.count > limit { throw .sequenceTooLong(length: prompt.count, limit: limit) }
        try model.validate(ids: prompt.map { Int32(clamping: $0) }, length: prompt.count)
    }

    /// One sequence's generated tokens and the rules that end it; the same for one prompt
    /// at a time and for batches.
    private struct Decoding {
        let options: GenerationOptions
        let stops: Set<Int>
        var rng: SeededRandom
        var result: GenerationResult
        /// Text already passed on as deltas.
        var emitted = ""

        /// With a tokenizer the result carries decoded text.
        init(options: GenerationOptions, config: ModelConfig, tokenizer: Tokenizer?) {
            self.options = options
            stops = options.endTokens(config: config, tokenizer: tokenizer)
            rng = SeededRandom(seed: options.seed)
            result = GenerationResult(tokens: [], text: tokenizer == nil ? nil : "", stopReason: .maxTokens,
                                      logprobs: options.returnLogprobs ? [] : nil, logits: options.returnLogits ? [] : nil)
        }

        /// Chooses the next token from `logits` and records it; returns why the sequence ends
        /// there, or nil when it goes on.
        mutating func take(_ logits: [Float], tokenizer: Tokenizer?, onStep: ((GenerationStep) -> Bool)?) -> StopReason? {
            let token = options.sampler.sample(logits, rng: &rng)
            let logprob = Generator.logSoftmax(logits, at: token)
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
                if let hit = Generator.firstStop(in: text, options.stopStrings) {
                    result.text = String(text[..<hit.range.lowerBound])
                    _ = onStep?(GenerationStep(index: result.tokens.count - 1, token: token, logprob: logprob, textDelta: delta))
                    return .stopString(hit.stop)
                }
            }
            if let onStep, !onStep(GenerationStep(index: result.tokens.count - 1, token: token, logprob: logprob, textDelta: delta)) {
                return .cancelled
            }
            if stops.contains(token) { return .stopToken(token) }
            return result.tokens.count >= options.maxTokens ? .maxTokens : nil
        }
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

    /// The stop string that occurs first in `text`, with where it occurs.
    public static func firstStop(in text: String, _ stops: [String]) -> (stop: String, range: Range<String.Index>)? {
        var best: (stop: String, range: Range<String.Index>)?
        for stop in stops where !stop.isEmpty {
            if let r = text.range(of: stop), best == nil || r.lowerBound < best!.range.lowerBound { best = (stop, r) }
        }
        return best
    }
}
