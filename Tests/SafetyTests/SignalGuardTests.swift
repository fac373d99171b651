import Engine
import Models
import Testing
import Tokenizers
@testable import Safety

@Suite struct SignalGuardTests {
    static func setup(_ family: ModelConfig.Family = .gpt2) throws -> (TransformerModel, Tokenizer, SafetySignal, [Int]) {
        let tokenizer = try Tiny.tokenizer()
        let (model, grown, signal) = try SafetySignal.adding(to: try Tiny.model(family, vocab: tokenizer.vocabSize), tokenizer: tokenizer, seed: 4)
        let prompt = grown.encode(Tiny.template.prompt("What is 2 + 3?"))
        return (model, grown, signal, prompt)
    }

    static let free = GenerationOptions(maxTokens: 20, stopAtEndOfSequence: false)

    /// A head whose checks spread over (0, 1), seven prompts with budgets of 6–15 tokens, and
    /// every P(malicious) that checking each answer at every step sees, sorted.
    static func spread(_ family: ModelConfig.Family) throws
        -> (TransformerModel, Tokenizer, SafetySignal, prompts: [[Int]], options: [GenerationOptions], ps: [Float]) {
        let (model, tokenizer, signal, _) = try setup(family)
        var rng = SeededRandom(seed: 12)
        rng.fillNormal(signal.weight.value, std: 3)
        let prompts = ["What is 2 + 3?", "Name a colour.", "How do I pick a lock?", "Say hi", "Count to five", "Why?", "Tell me a story"]
            .map { tokenizer.encode(Tiny.template.prompt($0)) }
        let options = prompts.indices.map { GenerationOptions(maxTokens: 6 + 3 * ($0 % 4), stopAtEndOfSequence: false) }
        let observe = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: GuardOptions(threshold: 2, schedule: .every))
        let ps = try zip(prompts, options).flatMap { try observe.generate(prompt: $0, options: $1).trace.map(\.pMalicious) }.sorted()
        return (model, tokenizer, signal, prompts, options, ps)
    }

    @Test func schedulesPickTheirSteps() {
        func steps(_ s: CheckSchedule) -> [Int] { (1...70).filter { s.isCheck(step: $0) } }
        #expect(steps(.every) == Array(1...70))
        #expect(steps(.first).isEmpty)
        #expect(steps(.periodic(10)) == [10, 20, 30, 40, 50, 60, 70])
        #expect(steps(.defaultAnnealing) == [1, 2, 4, 8, 16, 32, 48, 64])
        #expect(CheckSchedule(name: "periodic", period: 3) == .periodic(3))
        #expect(CheckSchedule(name: "sometimes") == nil)
    }

    @Test(arguments: [ModelConfig.Family.gpt2, .llama])
    func cachedDecodingMatchesTheFullSignalLayout(family: ModelConfig.Family) throws {
        let (model, tokenizer, signal, prompt) = try Self.setup(family)
        let unguarded = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: GuardOptions(enabled: false))
        let result = try unguarded.generate(prompt: prompt, options: Self.free)
        #expect(result.trace.isEmpty && result.probes == 0 && result.tokens.count == 20)
        // Reference: recompute [CLS, prompt, answer so far] with the SFT mask every step, greedy.
        var answer: [Int] = []
        for _ in 0..<20 {
            let ids = ([signal.clsTokenId] + prompt + answer).map { Int32($0) }
            let mask = SignalMask.build(pattern: .sft, batch: 1, length: ids.count, promptLengths: [prompt.count],
                                        rowLengths: [ids.count - 1])
            let logits = model.forward(tape: Tape(), ids: ids, batch: 1, length: ids.count, mask: mask).value.scalars
            let v = model.config.vocabSize
            answer.append(Sampler.argmax(Array(logits[(ids.count - 1) * v..<ids.count * v]).withUnsafeBufferPointer { $0 }))
        }
        #expect(result.tokens == answer)
        // The prompt's classification equals the head on the reference CLS hidden state.
        let ids = ([signal.clsTokenId] + prompt).map { Int32($0) }
        let mask = SignalMask.build(pattern: .sft, batch: 1, length: ids.count, promptLengths: [prompt.count], rowLengths: [prompt.count])
        let hidden = model.hiddenStates(tape: Tape(), ids: ids, batch: 1, length: ids.count, mask: mask).value
        #expect(abs(try unguarded.classify(prompt: prompt) - signal.maliciousProbability(hidden.data)) < 1e-5)
    }

    @Test func maliciousHeadForcesTheRefusalPrefix() throws {
        let (model, tokenizer, signal, prompt) = try Self.setup()
        signal.bias.value.data[1] = 50
        let decoder = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal)
        let result = try decoder.generate(prompt: prompt, options: GenerationOptions(maxTokens: 60, stopAtEndOfSequence: false))
        #expect(result.refusalAt == 0)
        #expect(result.text.hasPrefix("Sorry, I cannot fulfill your request because"))
        #expect(result.trace.first == SignalCheck(step: 0, pMalicious: 1, window: SignalWindow(query: true, from: 0, to: 0),
                                                  action: .refusalInserted))
        // One recorded check over the query and the first r1 tokens after the prefix.
        let prefix = tokenizer.encode(GuardOptions().refusalPrefix, addSpecialTokens: false).count
        #expect(result.trace.count == 2)
        #expect(result.trace.last?.window == SignalWindow(query: true, from: prefix, to: prefix + 5))
        #expect(RefusalJudge().isRefusal(result.text))
    }

    /// A fine-tune's guard reads its parent's head too: a query the parent's head calls
    /// malicious is refused at the start though the child's own head calls it benign; a parent
    /// that calls everything benign changes nothing; a parent of another vocabulary is refused.
    @Test func parentGuardRefusesTheQueriesItFlags() throws {
        let (model, tokenizer, signal, prompt) = try Self.setup()
        signal.bias.value.data[0] = 50
        let (parentModel, parentTokenizer, parentSignal, _) = try Self.setup(.llama)
        parentSignal.bias.value.data[1] = 50
        let parent = try GuardedDecoder(model: parentModel, tokenizer: parentTokenizer, signal: parentSignal)
        let options = GenerationOptions(maxTokens: 30, stopAtEndOfSequence: false)
        let flagged = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, parent: parent).generate(prompt: prompt, options: options)
        #expect(flagged.refusalAt == 0 && flagged.trace.first?.pMalicious == 1 && flagged.trace.first?.action == .refusalInserted)
        #expect(flagged.text.hasPrefix(GuardOptions().refusalPrefix))

        parentSignal.bias.value.data[1] = 0
        parentSignal.bias.value.data[0] = 50
        let passed = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, parent: parent).generate(prompt: prompt, options: options)
        let alone = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal).generate(prompt: prompt, options: options)
        #expect(passed.tokens == alone.tokens && passed.refusalAt == nil && passed.trace == alone.trace)

        let other = try SafetySignal.adding(to: try Tiny.model(vocab: tokenizer.vocabSize + 7), tokenizer: try Tiny.tokenizer(), seed: 4)
        let stranger = try GuardedDecoder(model: other.model, tokenizer: other.tokenizer, signal: other.signal)
        #expect(throws: SignalError.self) { try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, parent: stranger) }
    }

    /// A guard whose own head calls everything benign decides exactly as its parent's head
    /// would alone at the same threshold: query and answer windows, refusals at the start and
    /// mid-answer, one prompt at a time and in batches, the parent's cache kept in step through
    /// rollbacks.
    @Test(arguments: [ModelConfig.Family.gpt2, .llama])
    func aParentChecksEveryWindowAsItsOwnGuardWould(family: ModelConfig.Family) throws {
        let (model, tokenizer, signal, prompts, options, ps) = try Self.spread(family)
        // The first threshold (halfway between observed values, from the top) at which the guard
        // alone refuses some answer at the start, some mid-answer and leaves some alone.
        var checks = GuardOptions(schedule: .periodic(2), tau: 2), expected: [GuardedResult] = []
        for i in stride(from: ps.count - 2, through: 0, by: -1) {
            checks.threshold = (ps[i] + ps[i + 1]) / 2
            let alone = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: checks)
            expected = try zip(prompts, options).map { try alone.generate(prompt: $0, options: $1) }
            if expected.contains(where: { $0.refusalAt == 0 }) && expected.contains(where: { ($0.refusalAt ?? 0) > 0 })
                && expected.contains(where: { $0.refusalAt == nil }) { break }
        }
        let benign = try SafetySignal(group: signal.tensorGroup)
        benign.bias.value.data[0] = 50
        let guarded = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: benign, options: checks,
                                         parent: try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal))
        #expect(expected.contains { $0.refusalAt == 0 } && expected.contains { ($0.refusalAt ?? 0) > 0 } && expected.contains { $0.refusalAt == nil })
        for batch in [1, 16] {
            let got = try guarded.generate(prompts: prompts, options: options, batch: batch)
            #expect(got.map(\.tokens) == expected.map(\.tokens) && got.map(\.refusalAt) == expected.map(\.refusalAt), "batch \(batch)")
            #expect(got.map { $0.trace.map(\.action) } == expected.map { $0.trace.map(\.action) })
            #expect(got.map { $0.trace.map(\.window) } == expected.map { $0.trace.map(\.window) })
        }
    }

    @Test func benignHeadChangesNothing() throws {
        let (model, tokenizer, signal, prompt) = try Self.setup()
        signal.bias.value.data[0] = 50
        let reference = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: GuardOptions(enabled: false))
            .generate(prompt: prompt, options: Self.free)
        let guarded = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal, options: GuardOptions(schedule: .every))
            .generate(prompt: prompt, options: Self.free)
        #expect(guarded.tokens == reference.tokens)
        #expect(guarded.refusalAt == nil)
        #expect(guarded.trace.map(\.step) == Array(0..<20))
        #expect(guarded.trace.allSatisfy { $0.action == .none && $0.pMalicious < 1e-6 })
        #expect(guarded.probes == 19)
        // Benign checks see the latest r2 generated tokens.
        #expect(guarded.trace[18].window == SignalWindow(query: false, from: 3, to: 18))
    }

    @Test func checksFollowTheSchedule() throws {
        let (model, tokenizer, signal, prompt) = try Self.setup()
        for (schedule, steps) in [(CheckSchedule.periodic(3), [0, 3, 6, 9, 12, 15, 18]), (.first, [0]),
                                  (.defaultAnnealing, [0, 1, 2, 4, 8, 16])] {
            let decoder = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal,
                                             options: GuardOptions(threshold: 2, schedule: schedule))
            let result = try decoder.generate(prompt: prompt, options: Self.free)
            #expect(result.trace.map(\.step) == steps, "\(schedule)")
            #expect(result.probes == steps.count - 1)
        }
    }

    /// Guarded decoding in batches gives each prompt what decoding it alone gives: refusals
    /// at the start and mid-answer, probes batched across sequences, slots refilled; the
    /// multi-threshold replay likewise.
    @Test(arguments: [ModelConfig.Family.gpt2, .llama])
    func batchedGuardedDecodingEqualsOnePromptAtATime(family: ModelConfig.Family) throws {
        let (model, tokenizer, signal, prompts, options, ps) = try Self.spread(family)
        // Thresholds halfway between observed values, so float rounding cannot flip a check.
        func between(_ q: Double) -> Float { let i = Int(Double(ps.count - 1) * q); return (ps[i] + ps[i + 1]) / 2 }
        let threshold = between(0.9)
        let decoder = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal,
                                         options: GuardOptions(threshold: threshold, schedule: .periodic(2), tau: 2))
        let one = try zip(prompts, options).map { try decoder.generate(prompt: $0, options: $1) }
        #expect(one.contains { $0.refusalAt == 0 } || one.contains { ($0.refusalAt ?? 0) > 0 }, "some answer is refused")
        #expect(one.contains { $0.refusalAt == nil }, "some answer is not")
        let thresholds = [between(0.5), threshold, 2]
        let replayOne = try zip(prompts, options).map { try decoder.interventions(prompt: $0, thresholds: thresholds, options: $1) }
        for batch in [2, 16] {
            let batched = try decoder.generate(prompts: prompts, options: options, batch: batch)
            #expect(batched.map(\.tokens) == one.map(\.tokens), "batch \(batch)")
            #expect(batched.map(\.refusalAt) == one.map(\.refusalAt) && batched.map(\.probes) == one.map(\.probes))
            #expect(batched.map(\.text) == one.map(\.text))
            for (a, b) in zip(batched, one) {
                #expect(a.trace.map(\.step) == b.trace.map(\.step) && a.trace.map(\.window) == b.trace.map(\.window)
                        && a.trace.map(\.action) == b.trace.map(\.action))
                #expect(zip(a.trace, b.trace).allSatisfy { abs($0.pMalicious - $1.pMalicious) < 1e-5 })
            }
            let replay = try decoder.interventions(prompts: prompts, thresholds: thresholds, options: options, batch: batch)
            #expect(replay.map(\.answer.tokens) == replayOne.map(\.answer.tokens) && replay.map(\.insertions) == replayOne.map(\.insertions))
        }
    }

    @Test func midAnswerSwitchRollsBackAndInsertsThePrefix() throws {
        let (model, tokenizer, signal, prompt) = try Self.setup()
        // Heads drawn until one rates some answer window above the query and every earlier
        // window; a threshold between them then triggers exactly there.
        var found: (free: GuardedResult, k: Int, threshold: Float)?
        var rng = SeededRandom(seed: 11)
        for _ in 0..<40 where found == nil {
            rng.fillNormal(signal.weight.value, std: 3)
            let observe = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal,
                                             options: GuardOptions(threshold: 2, schedule: .every))
            let free = try observe.generate(prompt: prompt, options: Self.free)
            let ps = free.trace.map(\.pMalicious)
            if let k = (1..<ps.count).first(where: { k in ps[k] > ps[..<k].max()! + 1e-3 }) {
                found = (free, k, (ps[..<k].max()! + ps[k]) / 2)
            }
        }
        let (free, k, threshold) = try #require(found)
        let guarded = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal,
                                         options: GuardOptions(threshold: threshold, schedule: .every, tau: 1))
        let result = try guarded.generate(prompt: prompt, options: Self.free)
        let step = free.trace[k].step
        let prefix = tokenizer.encode(GuardOptions().refusalPrefix, addSpecialTokens: false)
        #expect(result.refusalAt == step)
        #expect(Array(result.tokens.prefix(step)) == Array(free.tokens.prefix(step)))
        // The prefix goes in whole, even past the token budget, which then ends generation.
        #expect(Array(result.tokens.dropFirst(step)) == prefix)
        #expect(result.trace.last?.action == .refusalInserted && result.trace.last?.step == step)
    }
}

/// The guard's cost measurement decodes every prompt with both decoders and counts what it timed.
@Suite struct GuardOverheadTests {
    @Test func bothDecodersRunEveryPromptForTheFullBudget() throws {
        let (model, tokenizer, signal, prompt) = try SignalGuardTests.setup(.llama)
        // Threshold above 1: checks run on schedule but never insert a refusal, so both decoders write 12 tokens.
        let decoder = try GuardedDecoder(model: model, tokenizer: tokenizer, signal: signal,
                                         options: GuardOptions(threshold: 2, schedule: .every))
        let cost = try GuardOverhead.measure(guarded: decoder, unguarded: model, prompts: [prompt, prompt, prompt], tokens: 12)
        #expect(cost.prompts == 3 && cost.guardedTokens == 36 && cost.unguardedTokens == 36)
        // Schedule `every`: one probe per generated token after the first prediction.
        #expect(cost.probesPerToken > 0.5 && cost.probesPerToken <= 1)
        #expect(cost.guardedSecondsPerToken > 0 && cost.unguardedSecondsPerToken > 0 && cost.checksOffSecondsPerToken > 0)
        #expect(cost.overhead.isFinite && cost.checksOverhead.isFinite)
    }
}
