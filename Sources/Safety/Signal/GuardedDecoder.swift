import Engine
import Foundation
import Models
import Tokenizers

/// What guarded decoding produced.
public struct GuardedResult: Sendable {
    /// Generated ids, the inserted refusal prefix included; tokens rolled back are gone.
    public var tokens: [Int]
    /// Decoded output, cut before a stop string.
    public var text: String
    /// Why generation ended.
    public var stopReason: StopReason
    /// Every classification, in order.
    public var trace: [SignalCheck]
    /// Index in `tokens` where the refusal prefix starts, if it was inserted.
    public var refusalAt: Int?
    /// Extra forward passes spent on re-classification.
    public var probes: Int
}

/// SA-ESS guarded decoding: the prompt is decoded as `[CLS, prompt…]` with the signal's
/// attention pattern (one forward builds CLS and the prompt together), then the answer
/// token by token with a KV cache. The CLS prediction on the query decides the start: a
/// malicious query gets the refusal prefix forced at once. While the answer is benign,
/// checks scheduled by `GuardOptions.schedule` re-classify with a probe CLS that sees the
/// latest r2 generated tokens; a benign → malicious switch at step t starts confirming
/// checks at every step over generated tokens [t − r2, t + r3]; τ consecutive malicious
/// checks roll the cache back to t and insert the refusal prefix there. After a malicious
/// first prediction one check over the query and the first r1 tokens after the prefix is
/// recorded (a refusal is never undone). The prefix is inserted whole, even past
/// `maxTokens` (generation then ends), so a judge always sees a complete refusal.
///
/// A probe is one extra single-token forward: a CLS query at position 0 appended to the
/// cache with a mask restricted to its window, read through the head, then rolled back.
/// Cache rows equal positions: row 0 CLS, rows 1...P the prompt (BOS first), then the answer.
public final class GuardedDecoder: AnswerDecoder {
    /// The model (its vocabulary holds the CLS token).
    public let model: TransformerModel
    /// Decodes output and encodes the refusal prefix.
    public let tokenizer: Tokenizer
    /// The head and CLS token.
    public let signal: SafetySignal
    /// Guard settings.
    public let options: GuardOptions
    /// The P(malicious) a check must reach: the options', else the head's calibrated one,
    /// else `GuardOptions.uncalibratedThreshold`.
    public let threshold: Float
    private let tape = Tape()
    private let prefixIds: [Int]

    /// A guarded decoder; fails when the signal does not fit the model.
    public init(model: TransformerModel, tokenizer: Tokenizer, signal: SafetySignal, options: GuardOptions = .init()) throws(SignalError) {
        try signal.validate(for: model)
        self.model = model
        self.tokenizer = tokenizer
        self.signal = signal
        self.options = options
        threshold = options.threshold ?? signal.calibration?.threshold ?? GuardOptions.uncalibratedThreshold
        prefixIds = tokenizer.encode(options.refusalPrefix, addSpecialTokens: false)
    }

    public var isGuarded: Bool { options.enabled }

    /// When the threshold in use is the head's calibrated one but these options check
    /// otherwise than the calibrated guard did: what each does, for a note to the user.
    public var calibrationMismatch: String? {
        guard options.threshold == nil, let calibration = signal.calibration, calibration.matches(options) == false,
              let settings = calibration.settings else { return nil }
        return "calibrated with \(settings); this run checks with schedule \(options.schedule), τ \(options.tau)"
    }

    public func answer(prompt: [Int], options: GenerationOptions) throws(ModelError) -> DecodedAnswer {
        let r = try generate(prompt: prompt, options: options)
        return DecodedAnswer(tokens: r.tokens, text: r.text, guardTriggered: r.refusalAt != nil)
    }

    /// P(malicious) of the CLS prediction on `prompt` alone (no generation).
    public func classify(prompt: [Int]) throws(ModelError) -> Float {
        let run = try Run(self, prompt: prompt, capacity: prompt.count + 1)
        return run.initialP
    }

    /// Generates after `prompt` (ids without CLS; BOS and chat template included).
    public func generate(prompt: [Int], options gen: GenerationOptions) throws(ModelError) -> GuardedResult {
        try decode(prompt: prompt, options: gen, thresholds: [threshold], rewrite: true).result
    }

    /// For each of `thresholds`, whether guarded decoding of `prompt` with it would insert
    /// the refusal, from one decoding. Until a refusal goes in, a guarded answer is the
    /// unguarded one (checks only read the cache), so one policy per threshold replays over
    /// that answer and the checks they share are computed once. `answer` is the guarded
    /// answer of every threshold that does not intervene; decoding stops early, with a
    /// shorter answer, once every threshold has intervened.
    public func interventions(prompt: [Int], thresholds: [Float], options gen: GenerationOptions) throws(ModelError)
        -> (answer: GuardedResult, intervenes: [Bool]) {
        let (answer, insertions) = try decode(prompt: prompt, options: gen, thresholds: thresholds, rewrite: false)
        return (answer, insertions.map { $0 != nil })
    }

    /// Decodes `prompt` with one policy per threshold. With `rewrite` (one threshold) an
    /// insertion rewinds and forces the refusal prefix; without, the answer is never
    /// rewritten and a policy that inserts only records where and stops checking.
    /// Returns the result (trace only with `rewrite`) and each policy's insertion point.
    private func decode(prompt: [Int], options gen: GenerationOptions, thresholds: [Float],
                        rewrite: Bool) throws(ModelError) -> (result: GuardedResult, insertions: [Int?]) {
        precondition(!rewrite || thresholds.count == 1, "GuardedDecoder: rewriting decodes with one threshold")
        let budget = max(0, gen.maxTokens)
        let run = try Run(self, prompt: prompt, capacity: 1 + prompt.count + budget + prefixIds.count + 1)
        var result = GuardedResult(tokens: [], text: "", stopReason: .maxTokens, trace: [], refusalAt: nil, probes: 0)
        var stops = gen.stopTokens
        if gen.stopAtEndOfSequence {
            if let eos = model.config.eosTokenId { stops.insert(eos) }
            if let eos = tokenizer.eosTokenId { stops.insert(eos) }
        }
        var rng = SeededRandom(seed: gen.seed)
        var logits = run.initialLogits
        var policies = thresholds.map { GuardPolicy(options: options, threshold: $0) }
        var insertions = [Int?](repeating: nil, count: thresholds.count)

        func insertRefusal(at t: Int) throws(ModelError) {
            result.tokens.removeLast(result.tokens.count - t)
            run.rollback(generated: t)
            let room = max(0, model.config.maxPositions - run.length)
            let forced = Array(prefixIds.prefix(room))
            if !forced.isEmpty { logits = try run.feed(forced) }
            result.tokens += forced
            result.refusalAt = t
        }
        /// Records a decision of policy `k`; a rewriting decode acts on an insertion.
        func apply(_ d: GuardPolicy.Decision, policy k: Int) throws(ModelError) {
            guard rewrite else {
                if let at = d.insertAt { insertions[k] = at }
                return
            }
            result.trace.append(d.check)
            guard let at = d.insertAt else { return }
            insertions[k] = at
            try insertRefusal(at: at)
            if at == 0 { policies[k].refusedAtStart(prefixEnd: result.tokens.count) }
        }

        if options.enabled {
            for k in policies.indices { try apply(policies[k].start(pMalicious: run.initialP, budget: budget), policy: k) }
        }
        // Checks of one step, shared by the policies (kept across steps for its storage).
        var probed: [SignalWindow: Float] = [:]
        while result.tokens.count < budget {
            if !rewrite && options.enabled && !insertions.isEmpty && !insertions.contains(where: { $0 == nil }) { break }
            let step = result.tokens.count
            if options.enabled && step > 0 {
                probed.removeAll(keepingCapacity: true)
                func probe(_ w: SignalWindow) throws(ModelError) -> Float {
                    if let p = probed[w] { return p }
                    let p = try run.probe(w)
                    probed[w] = p
                    result.probes += 1
                    return p
                }
                for k in policies.indices where rewrite || insertions[k] == nil {
                    if let d = try policies[k].check(step: step, probe: probe) { try apply(d, policy: k) }
                }
            }
            if result.tokens.count >= budget { break }
            let token = gen.sampler.sample(logits, rng: &rng)
            result.tokens.append(token)
            if !gen.stopStrings.isEmpty {
                let text = tokenizer.decode(result.tokens)
                if let hit = Self.firstStop(in: text, gen.stopStrings) {
                    result.stopReason = .stopString(hit)
                    break
                }
            }
            if stops.contains(token) {
                result.stopReason = .stopToken(token)
                break
            }
            if result.tokens.count >= budget { break }
            if run.length >= model.config.maxPositions {
                result.stopReason = .contextFull
                break
            }
            logits = try run.feed([token])
        }
        var text = tokenizer.decode(result.tokens)
        if case let .stopString(s) = result.stopReason, let r = text.range(of: s) { text = String(text[..<r.lowerBound]) }
        result.text = text
        return (result, insertions)
    }

    private static func firstStop(in text: String, _ stops: [String]) -> String? {
        var best: (String, String.Index)?
        for s in stops where !s.isEmpty {
            if let r = text.range(of: s), best == nil || r.lowerBound < best!.1 { best = (s, r.lowerBound) }
        }
        return best?.0
    }

    /// One decoding: the cache and the feeding of answer tokens and probes.
    private final class Run {
        let owner: GuardedDecoder
        let cache: KVCache
        let promptCount: Int
        let initialP: Float
        let initialLogits: [Float]

        init(_ owner: GuardedDecoder, prompt: [Int], capacity: Int) throws(ModelError) {
            self.owner = owner
            let model = owner.model
            if prompt.isEmpty { throw .emptyInput }
            let ids = [Int32(clamping: owner.signal.clsTokenId)] + prompt.map { Int32(clamping: $0) }
            try model.validate(ids: ids, length: ids.count)
            promptCount = prompt.count
            let cache = KVCache(config: model.config, maxLength: max(ids.count + 1, capacity))
            self.cache = cache
            let tape = owner.tape
            defer { tape.reset() }
            let mask = SignalMask.build(pattern: owner.signal.pattern, batch: 1, length: ids.count,
                                        promptLengths: [prompt.count], rowLengths: [prompt.count])
            let (p, logits) = tape.withoutGrad { () -> (Float, [Float]) in
                let hidden = model.hiddenStates(tape: tape, ids: ids, batch: 1, length: ids.count, mask: mask, cache: cache)
                let p = owner.signal.maliciousProbability(hidden.value.data)
                let logits = model.logits(tape: tape, hidden: hidden, rows: [ids.count - 1]).value.scalars
                return (p, logits)
            }
            initialP = p
            initialLogits = logits
        }

        /// Cache rows in use.
        var length: Int { cache.length }

        /// Feeds answer tokens; returns the logits after the last one.
        func feed(_ tokens: [Int]) throws(ModelError) -> [Float] {
            let model = owner.model
            let ids = tokens.map { Int32(clamping: $0) }
            try model.validate(ids: ids, length: ids.count, start: cache.length)
            let n = cache.length
            // Answer tokens read CLS (row 0) under the SFT pattern, so the causal rule is the mask.
            let mask: AttentionMask? = owner.signal.pattern == .sft ? nil
                : AttentionMask(batch: 1, queries: ids.count, keys: n + ids.count) { _, i, j in j != 0 && j <= n + i }
            let tape = owner.tape
            defer { tape.reset() }
            return tape.withoutGrad {
                let hidden = model.hiddenStates(tape: tape, ids: ids, batch: 1, length: ids.count, mask: mask, cache: cache)
                return model.logits(tape: tape, hidden: hidden, rows: [ids.count - 1]).value.scalars
            }
        }

        /// P(malicious) of a CLS query at position 0 that sees `window` (and itself); the cache is left as it was.
        func probe(_ window: SignalWindow) throws(ModelError) -> Float {
            let model = owner.model
            let n = cache.length
            let answerStart = 1 + promptCount
            let lo = answerStart + window.from, hi = min(n, answerStart + window.to)
            let query = window.query
            let mask = AttentionMask(batch: 1, queries: 1, keys: n + 1) { _, _, j in
                j == n || (query && j >= 1 && j < answerStart) || (j >= lo && j < hi)
            }
            let tape = owner.tape
            defer {
                tape.reset()
                cache.truncate(to: n)
            }
            return tape.withoutGrad {
                let hidden = model.hiddenStates(tape: tape, ids: [Int32(clamping: owner.signal.clsTokenId)], batch: 1, length: 1,
                                                mask: mask, positions: [0], cache: cache)
                return owner.signal.maliciousProbability(hidden.value.data)
            }
        }

        /// Forgets generated tokens from index `generated` on.
        func rollback(generated: Int) {
            cache.truncate(to: min(cache.length, 1 + promptCount + generated))
        }
    }
}
