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
    /// The guard of the model this one was fine-tuned from, when it had one. Every check
    /// (the query's, and each answer window's) reads the larger P(malicious) of this model's
    /// head and the parent's, against `threshold`: a fine-tune moves its own head's view of an
    /// input, not its parent's (docs/experiments/quickstart-guard.md). The parent's own
    /// threshold is not used: calibrating this guard calibrates the pair. The parent keeps a
    /// cache of its own, caught up only at checks, batched across sequences.
    public let parent: GuardedDecoder?
    private let tape = Tape()
    private let prefixIds: [Int]

    /// A guarded decoder; fails when the signal does not fit the model, or `parent` reads
    /// another vocabulary.
    public init(model: TransformerModel, tokenizer: Tokenizer, signal: SafetySignal, options: GuardOptions = .init(),
                parent: GuardedDecoder? = nil) throws(SignalError) {
        try signal.validate(for: model)
        if let parent, parent.model.config.vocabSize != model.config.vocabSize || parent.signal.clsTokenId != signal.clsTokenId {
            throw .parentMismatch("its vocabulary or CLS token differs from this model's")
        }
        self.model = model
        self.tokenizer = tokenizer
        self.signal = signal
        self.options = options
        self.parent = parent
        threshold = options.threshold ?? signal.calibration?.threshold ?? GuardOptions.uncalibratedThreshold
        prefixIds = tokenizer.encode(options.refusalPrefix, addSpecialTokens: false)
    }

    public var isGuarded: Bool { options.enabled }

    /// When the threshold in use is the head's calibrated one but this guard checks otherwise
    /// than the calibrated guard did (schedule, τ, or the parent's head): what each does, for
    /// a note to the user.
    public var calibrationMismatch: String? {
        guard options.threshold == nil, let calibration = signal.calibration else { return nil }
        if calibration.matches(options) == false, let settings = calibration.settings {
            return "calibrated with \(settings); this run checks with schedule \(options.schedule), τ \(options.tau)"
        }
        if let withParent = calibration.withParent, withParent != (parent != nil) {
            return withParent ? "calibrated reading the parent's head too; this run reads this model's head alone"
                : "calibrated on this model's head alone; this run reads the parent's head too"
        }
        return nil
    }

    public func answers(prompts: [[Int]], options: [GenerationOptions]) throws(ModelError) -> [DecodedAnswer] {
        try generate(prompts: prompts, options: options).map {
            DecodedAnswer(tokens: $0.tokens, text: $0.text, guardTriggered: $0.refusalAt != nil)
        }
    }

    /// P(malicious) of the CLS prediction on `prompt` alone (no generation).
    public func classify(prompt: [Int]) throws(ModelError) -> Float {
        try prefill(prompt, into: KVCache(config: model.config, maxLength: prompt.count + 1)).pMalicious
    }

    /// Generates after `prompt` (ids without CLS; BOS and chat template included).
    public func generate(prompt: [Int], options gen: GenerationOptions) throws(ModelError) -> GuardedResult {
        try generate(prompts: [prompt], options: [gen])[0]
    }

    /// Guarded decoding of each of `prompts` (with `options[i]`), up to `batch` at a time:
    /// answer tokens and probes of the sequences that need them run as one forward per
    /// step (`BatchedKVCache`); prefills and forced prefixes run per sequence. Each result
    /// is what decoding that prompt alone gives (up to float summation order).
    public func generate(prompts: [[Int]], options: [GenerationOptions], batch: Int = Generator.defaultBatch)
        throws(ModelError) -> [GuardedResult] {
        try decode(prompts: prompts, options: options, thresholds: [threshold], rewrite: true, batch: batch).map(\.result)
    }

    /// For each of `thresholds`, where guarded decoding of `prompt` with it would insert the
    /// refusal (its `refusalAt`; nil: it would not), from one decoding. Until a refusal goes
    /// in, a guarded answer is the unguarded one (checks only read the cache), so one policy
    /// per threshold replays over that answer and the checks they share are computed once.
    /// `answer` is the guarded answer of every threshold that does not intervene; decoding
    /// stops early, with a shorter answer, once every threshold has intervened. Thresholds
    /// that insert at the same point give the same guarded answer.
    public func interventions(prompt: [Int], thresholds: [Float], options gen: GenerationOptions) throws(ModelError)
        -> (answer: GuardedResult, insertions: [Int?]) {
        try interventions(prompts: [prompt], thresholds: thresholds, options: [gen])[0]
    }

    /// `interventions(prompt:thresholds:options:)` for each of `prompts`, decoded in batches.
    public func interventions(prompts: [[Int]], thresholds: [Float], options: [GenerationOptions],
                              batch: Int = Generator.defaultBatch) throws(ModelError) -> [(answer: GuardedResult, insertions: [Int?])] {
        try decode(prompts: prompts, options: options, thresholds: thresholds, rewrite: false, batch: batch).map {
            ($0.result, $0.insertions)
        }
    }

    /// One prompt's decoding: its answer so far, its policies (one per threshold) and
    /// where each inserted the refusal, and the logits predicting its next token.
    private struct Decoding {
        let prompt: Int
        let promptCount: Int
        let budget: Int
        let options: GenerationOptions
        let stops: Set<Int>
        var rng: SeededRandom
        var result = GuardedResult(tokens: [], text: "", stopReason: .maxTokens, trace: [], refusalAt: nil, probes: 0)
        var policies: [GuardPolicy]
        var insertions: [Int?]
        var logits: [Float]
        /// Probe results of the current step, shared by the policies.
        var probed: [SignalWindow: Float] = [:]
        /// Answer tokens in the parent's cache.
        var parentFed = 0
    }

    /// Decodes `prompts` with one policy per threshold. With `rewrite` (one threshold) an
    /// insertion rewinds and forces the refusal prefix; without, the answer is never
    /// rewritten and a policy that inserts only records where and stops checking.
    /// Returns each prompt's result (trace only with `rewrite`) and its policies' insertion points.
    ///
    /// Each step, for every sequence still going: the checks due (their probes batched, in
    /// rounds when a sequence's policies need different windows), then the next token, then
    /// one batched forward feeding every sequence its token. A finished sequence's slot
    /// takes the next prompt.
    private func decode(prompts: [[Int]], options: [GenerationOptions], thresholds: [Float], rewrite: Bool,
                        batch: Int) throws(ModelError) -> [(result: GuardedResult, insertions: [Int?])] {
        precondition(!rewrite || thresholds.count == 1, "GuardedDecoder: rewriting decodes with one threshold")
        precondition(options.count == prompts.count, "GuardedDecoder: \(options.count) options for \(prompts.count) prompts")
        guard !prompts.isEmpty else { return [] }
        let limit = model.config.maxPositions
        let capacity = min(limit, zip(prompts, options).map { 2 + $0.count + max(0, $1.maxTokens) + prefixIds.count }.max()!)
        let cache = BatchedKVCache(config: model.config, batch: max(1, min(batch, prompts.count)), maxLength: capacity)
        let guardedByParent = self.options.enabled ? parent : nil
        let parentCache = guardedByParent.map { BatchedKVCache(config: $0.model.config, batch: cache.slots.count, maxLength: capacity) }
        var running = [Decoding?](repeating: nil, count: cache.slots.count)
        var done = [(result: GuardedResult, insertions: [Int?])?](repeating: nil, count: prompts.count)
        var queue = prompts.indices.makeIterator()

        func finish(_ slot: Int) {
            guard var s = running[slot] else { return }
            var text = tokenizer.decode(s.result.tokens)
            if case let .stopString(stop) = s.result.stopReason, let r = text.range(of: stop) { text = String(text[..<r.lowerBound]) }
            s.result.text = text
            done[s.prompt] = (s.result, s.insertions)
            running[slot] = nil
        }
        /// Rewinds sequence `s` in `slot` to generated token `t` and forces the refusal prefix there.
        func insertRefusal(_ s: inout Decoding, slot: Int, at t: Int) throws(ModelError) {
            let kv = cache.slots[slot]
            s.result.tokens.removeLast(s.result.tokens.count - t)
            kv.truncate(to: min(kv.length, 1 + s.promptCount + t))
            if let parentCache {
                parentCache.slots[slot].truncate(to: min(parentCache.slots[slot].length, 1 + s.promptCount + t))
                s.parentFed = min(s.parentFed, t)
            }
            let room = max(0, limit - kv.length)
            let forced = Array(prefixIds.prefix(room))
            if !forced.isEmpty { s.logits = try feed(forced, into: kv) }
            s.result.tokens += forced
            s.result.refusalAt = t
        }
        /// Records a decision of policy `k`; a rewriting decode acts on an insertion.
        func apply(_ d: GuardPolicy.Decision, policy k: Int, to s: inout Decoding, slot: Int) throws(ModelError) {
            guard rewrite else {
                if let at = d.insertAt { s.insertions[k] = at }
                return
            }
            s.result.trace.append(d.check)
            guard let at = d.insertAt else { return }
            s.insertions[k] = at
            try insertRefusal(&s, slot: slot, at: at)
            if at == 0 { s.policies[k].refusedAtStart(prefixEnd: s.result.tokens.count) }
        }
        /// Fills free slots from the queue: prefill, and the query's own classification.
        func refill() throws(ModelError) {
            for slot in running.indices where running[slot] == nil {
                guard let i = queue.next() else { return }
                let kv = cache.slots[slot]
                kv.reset()
                var (p, logits) = try prefill(prompts[i], into: kv)
                if let guardedByParent, let parentCache {
                    parentCache.slots[slot].reset()
                    p = max(p, try guardedByParent.prefill(prompts[i], into: parentCache.slots[slot]).pMalicious)
                }
                let stops = options[i].endTokens(config: model.config, tokenizer: tokenizer)
                let budget = max(0, options[i].maxTokens)
                var s = Decoding(prompt: i, promptCount: prompts[i].count, budget: budget, options: options[i], stops: stops,
                                 rng: SeededRandom(seed: options[i].seed),
                                 policies: thresholds.map { GuardPolicy(options: self.options, threshold: $0) },
                                 insertions: [Int?](repeating: nil, count: thresholds.count), logits: logits)
                if self.options.enabled {
                    for k in s.policies.indices { try apply(s.policies[k].start(pMalicious: p, budget: budget), policy: k, to: &s, slot: slot) }
                }
                running[slot] = s
            }
        }
        /// Why `s` ends after its latest token, if it does.
        func stopReason(_ s: Decoding, slot: Int) -> StopReason? {
            let token = s.result.tokens.last!
            if !s.options.stopStrings.isEmpty, let hit = Generator.firstStop(in: tokenizer.decode(s.result.tokens), s.options.stopStrings) {
                return .stopString(hit.stop)
            }
            if s.stops.contains(token) { return .stopToken(token) }
            if s.result.tokens.count >= s.budget { return .maxTokens }
            return cache.slots[slot].length >= limit ? .contextFull : nil
        }
        /// Whether policy `k` of `s` still checks.
        func checking(_ s: Decoding, _ k: Int) -> Bool { rewrite || s.insertions[k] == nil }

        try refill()
        while running.contains(where: { $0 != nil }) {
            // The checks due before each sequence's next token.
            var windows: [Int: [SignalWindow]] = [:]
            for slot in running.indices {
                guard let s = running[slot] else { continue }
                let allInserted = !s.insertions.isEmpty && !s.insertions.contains(where: { $0 == nil })
                if s.result.tokens.count >= s.budget || (!rewrite && self.options.enabled && allInserted) {
                    finish(slot)
                    continue
                }
                running[slot]!.probed.removeAll(keepingCapacity: true)
                let step = s.result.tokens.count
                guard self.options.enabled && step > 0 else { continue }
                var needed: [SignalWindow] = []
                for k in s.policies.indices where checking(s, k) {
                    if let w = s.policies[k].window(at: step), !needed.contains(w) { needed.append(w) }
                }
                if !needed.isEmpty { windows[slot] = needed }
            }
            for round in 0..<(windows.values.map(\.count).max() ?? 0) {
                let probes = windows.keys.sorted().compactMap { slot in
                    windows[slot]!.count > round ? (slot, running[slot]!.promptCount, windows[slot]![round]) : nil
                }
                var parentP = [Float](repeating: 0, count: probes.count)
                if let guardedByParent, let parentCache {
                    var pending: [Int: [Int]] = [:]
                    for probe in probes where pending[probe.0] == nil {
                        let s = running[probe.0]!
                        if s.parentFed < s.result.tokens.count { pending[probe.0] = Array(s.result.tokens[s.parentFed...]) }
                        running[probe.0]!.parentFed = s.result.tokens.count
                    }
                    try guardedByParent.catchUp(pending, in: parentCache)
                    parentP = try guardedByParent.probe(probes, in: parentCache)
                }
                for ((probe, p), pp) in zip(zip(probes, try self.probe(probes, in: cache)), parentP) {
                    running[probe.0]!.probed[probe.2] = max(p, pp)
                    running[probe.0]!.result.probes += 1
                }
            }
            for slot in windows.keys.sorted() {
                var s = running[slot]!
                let step = s.result.tokens.count
                let probed = s.probed
                for k in s.policies.indices where checking(s, k) {
                    if let d = try s.policies[k].check(step: step, probe: { probed[$0]! }) { try apply(d, policy: k, to: &s, slot: slot) }
                }
                running[slot] = s
            }
            // The next token of each sequence.
            var fed: [Int] = []
            for slot in running.indices {
                guard var s = running[slot] else { continue }
                if s.result.tokens.count < s.budget {
                    let token = s.options.sampler.sample(s.logits, rng: &s.rng)
                    s.result.tokens.append(token)
                    if let stop = stopReason(s, slot: slot) {
                        s.result.stopReason = stop
                    } else {
                        fed.append(slot)
                        running[slot] = s
                        continue
                    }
                }
                running[slot] = s
                finish(slot)
            }
            if !fed.isEmpty {
                let logits = try step(fed.map { running[$0]!.result.tokens.last! }, slots: fed, in: cache)
                for (slot, row) in zip(fed, logits) { running[slot]!.logits = row }
            }
            try refill()
        }
        return done.map { $0! }
    }

    /// Prefills `[CLS, prompt…]` into `cache` with the signal's attention pattern; returns
    /// the CLS prediction and the logits predicting the first answer token.
    private func prefill(_ prompt: [Int], into cache: KVCache) throws(ModelError) -> (pMalicious: Float, logits: [Float]) {
        if prompt.isEmpty { throw .emptyInput }
        let ids = [Int32(clamping: signal.clsTokenId)] + prompt.map { Int32(clamping: $0) }
        try model.validate(ids: ids, length: ids.count)
        if ids.count > cache.remaining { throw .sequenceTooLong(length: ids.count, limit: cache.remaining) }
        defer { tape.reset() }
        let mask = SignalMask.build(pattern: signal.pattern, batch: 1, length: ids.count,
                                    promptLengths: [prompt.count], rowLengths: [prompt.count])
        return tape.withoutGrad {
            let hidden = model.hiddenStates(tape: tape, ids: ids, batch: 1, length: ids.count, mask: mask, cache: cache)
            return (signal.maliciousProbability(hidden.value.data),
                    model.logits(tape: tape, hidden: hidden, rows: [ids.count - 1]).value.scalars)
        }
    }

    /// Feeds answer tokens to one sequence; returns the logits after the last one. Answer
    /// tokens read CLS (row 0) only under the SFT pattern.
    private func feed(_ tokens: [Int], into cache: KVCache) throws(ModelError) -> [Float] {
        let ids = tokens.map { Int32(clamping: $0) }
        try model.validate(ids: ids, length: ids.count, start: cache.length)
        let n = cache.length
        let mask: AttentionMask? = signal.pattern == .sft ? nil
            : AttentionMask(batch: 1, queries: ids.count, keys: n + ids.count) { _, i, j in j != 0 && j <= n + i }
        defer { tape.reset() }
        return tape.withoutGrad {
            let hidden = model.hiddenStates(tape: tape, ids: ids, batch: 1, length: ids.count, mask: mask, cache: cache)
            return model.logits(tape: tape, hidden: hidden, rows: [ids.count - 1]).value.scalars
        }
    }

    /// Feeds each slot of `pending` its tokens, one batched forward per position across the
    /// slots that still have one; no logits (the parent's cache only has to be current).
    private func catchUp(_ pending: [Int: [Int]], in cache: BatchedKVCache) throws(ModelError) {
        let sft = signal.pattern == .sft
        for k in 0..<(pending.values.map(\.count).max() ?? 0) {
            let slots = pending.keys.sorted().filter { pending[$0]!.count > k }
            cache.feed(slots)
            let ids = slots.map { Int32(clamping: pending[$0]![k]) }
            for (id, start) in zip(ids, cache.positions) { try model.validate(ids: [id], length: 1, start: start) }
            let mask = cache.stepMask { _, j in sft || j != 0 }
            defer { tape.reset() }
            tape.withoutGrad {
                _ = model.hiddenStates(tape: tape, ids: ids, batch: slots.count, length: 1, mask: mask, cache: cache)
            }
        }
    }

    /// One token for each of `slots`, as one forward; returns each one's next logits.
    private func step(_ tokens: [Int], slots: [Int], in cache: BatchedKVCache) throws(ModelError) -> [[Float]] {
        cache.feed(slots)
        let ids = tokens.map { Int32(clamping: $0) }
        for (id, start) in zip(ids, cache.positions) { try model.validate(ids: [id], length: 1, start: start) }
        let sft = signal.pattern == .sft
        let mask = cache.stepMask { _, j in sft || j != 0 }
        defer { tape.reset() }
        return tape.withoutGrad {
            let logits = model.logits(tape: tape, hidden: model.hiddenStates(tape: tape, ids: ids, batch: slots.count, length: 1,
                                                                             mask: mask, cache: cache)).value
            let vocab = logits.lastDim
            return slots.indices.map { Array(UnsafeBufferPointer(start: logits.data + $0 * vocab, count: vocab)) }
        }
    }

    /// P(malicious) of a CLS query at position 0 per (slot, its prompt's length, window):
    /// the query sees its window (and itself), as one forward over the slots; the caches are
    /// left as they were. Cache rows: 0 CLS, 1...P the prompt, then the answer.
    private func probe(_ probes: [(slot: Int, promptCount: Int, window: SignalWindow)], in cache: BatchedKVCache)
        throws(ModelError) -> [Float] {
        guard !probes.isEmpty else { return [] }
        cache.feed(probes.map(\.slot))
        let lengths = cache.positions
        let spans = zip(probes, lengths).map { p, n in
            let answerStart = 1 + p.promptCount
            return (query: p.window.query, answerStart: answerStart, lo: answerStart + p.window.from, hi: min(n, answerStart + p.window.to))
        }
        let mask = cache.stepMask { r, j in
            let w = spans[r]
            return (w.query && j >= 1 && j < w.answerStart) || (j >= w.lo && j < w.hi)
        }
        let ids = [Int32](repeating: Int32(clamping: signal.clsTokenId), count: probes.count)
        defer {
            tape.reset()
            for (p, n) in zip(probes, lengths) { cache.slots[p.slot].truncate(to: n) }
        }
        return tape.withoutGrad {
            let hidden = model.hiddenStates(tape: tape, ids: ids, batch: probes.count, length: 1, mask: mask,
                                            positions: [Int32](repeating: 0, count: probes.count), cache: cache).value
            return probes.indices.map { signal.maliciousProbability(hidden.data + $0 * hidden.lastDim) }
        }
    }
}
