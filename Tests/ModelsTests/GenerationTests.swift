import Engine
import Testing
@testable import Models

@Suite struct GenerationTests {
    @Test(arguments: TinyConfigs.all)
    func cachedDecodingEqualsFullRecompute(config: ModelConfig) throws {
        let model = try TransformerModel(config: config, seed: 21)
        let generator = Generator(model: model)
        let prompt = [3, 14, 15, 9, 2]
        for sampler in [Sampler.greedy, Sampler(temperature: 0.8, topK: 10, topP: 0.9)] {
            var options = GenerationOptions(maxTokens: 12, sampler: sampler, seed: 8, stopAtEndOfSequence: false,
                                            returnLogits: true)
            let cached = try generator.generate(prompt: prompt, options: options)
            options.useCache = false
            let full = try generator.generate(prompt: prompt, options: options)
            #expect(cached.tokens == full.tokens)
            #expect(cached.tokens.count == 12)
            #expect(cached.stopReason == .maxTokens)
            let diff = zip(cached.logits ?? [], full.logits ?? []).map { maxAbsDiff($0, $1) }.max() ?? .infinity
            #expect(diff < 1e-4)
        }
    }

    /// Batched decoding gives each prompt what decoding it alone gives: prompts of different
    /// lengths, more prompts than slots (slots refill), per-prompt samplers, seeds, lengths
    /// and stop tokens, and a prompt with nothing to generate.
    @Test(arguments: TinyConfigs.all)
    func batchedGenerationEqualsOnePromptAtATime(config: ModelConfig) throws {
        let model = try TransformerModel(config: config, seed: 22)
        let generator = Generator(model: model)
        var rng = SeededRandom(seed: 5)
        let prompts = (0..<11).map { i in (0..<(1 + i * 3 % 9)).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
        let options = prompts.indices.map { i in
            GenerationOptions(maxTokens: i == 4 ? 0 : 3 + i % 7, sampler: i % 3 == 0 ? Sampler(temperature: 0.9, topK: 8) : .greedy,
                              seed: UInt64(i), stopTokens: i % 4 == 1 ? [7, 9] : [], stopAtEndOfSequence: false, returnLogits: true)
        }
        let one = try zip(prompts, options).map { try generator.generate(prompt: $0, options: $1) }
        for batch in [1, 3, 16] {
            let batched = try generator.generate(prompts: prompts, options: options, batch: batch)
            #expect(batched.map(\.tokens) == one.map(\.tokens), "batch \(batch)")
            #expect(batched.map(\.stopReason) == one.map(\.stopReason), "batch \(batch)")
            for (a, b) in zip(batched, one) {
                let diff = zip(a.logits ?? [], b.logits ?? []).map { maxAbsDiff($0, $1) }.max() ?? 0
                #expect(diff < 1e-4 && a.logits?.count == b.logits?.count)
            }
        }
    }

    @Test func rollbackRestoresTheSameLogits() throws {
        let model = try TransformerModel(config: TinyConfigs.llama, seed: 4)
        let session = DecodingSession(model: model, maxLength: 20)
        _ = try session.append([1, 2, 3, 4])
        let before = try session.append([5])
        _ = try session.append([6, 7])
        session.rollback(to: 4)
        #expect(session.tokens == [1, 2, 3, 4])
        #expect(session.cache?.length == 4)
        let after = try session.append([5])
        #expect(maxAbsDiff(before, after) < 1e-6)
    }

    @Test func stopTokensEndGeneration() throws {
        let model = try TransformerModel(config: TinyConfigs.gpt2, seed: 30)
        let generator = Generator(model: model)
        let free = try generator.generate(prompt: [1, 2], options: GenerationOptions(maxTokens: 6, stopAtEndOfSequence: false))
        let stop = try #require(free.tokens.dropFirst(2).first)
        let firstHit = try #require(free.tokens.firstIndex(of: stop))
        let stopped = try generator.generate(prompt: [1, 2], options: GenerationOptions(maxTokens: 6, stopTokens: [stop]))
        #expect(stopped.tokens == Array(free.tokens[...firstHit]))
        #expect(stopped.stopReason == .stopToken(stop))
    }

    @Test func streamingSeesEveryTokenAndCanCancel() throws {
        let model = try TransformerModel(config: TinyConfigs.gpt2, seed: 31)
        let generator = Generator(model: model)
        var seen: [Int] = []
        let result = try generator.generate(prompt: [4], options: GenerationOptions(maxTokens: 10, stopAtEndOfSequence: false,
                                                                                     returnLogprobs: true)) { step in
            seen.append(step.token)
            return seen.count < 3
        }
        #expect(seen == result.tokens)
        #expect(result.tokens.count == 3)
        #expect(result.stopReason == .cancelled)
        #expect(result.logprobs?.count == 3)
        #expect(result.logprobs?.allSatisfy { $0 <= 0 } == true)
    }

    @Test func contextLimitStopsGeneration() throws {
        let model = try TransformerModel(config: TinyConfigs.gpt2, seed: 32)  // 32 positions
        let result = try Generator(model: model).generate(prompt: Array(repeating: 1, count: 30),
                                                           options: GenerationOptions(maxTokens: 10, stopAtEndOfSequence: false))
        // 32 positions hold the prompt and two fed-back tokens; the third is predicted from them.
        #expect(result.tokens.count == 3)
        #expect(result.stopReason == .contextFull)
        #expect(throws: ModelError.sequenceTooLong(length: 33, limit: 32)) {
            try Generator(model: model).generate(prompt: Array(repeating: 1, count: 33))
        }
        #expect(throws: ModelError.tokenOutOfRange(id: 50, vocabSize: 50)) {
            try Generator(model: model).generate(prompt: [50])
        }
    }
}

/// Largest absolute elementwise difference.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "maxAbsDiff: \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in a.indices { m = max(m, abs(a[i] - b[i])) }
    return m
}

@Suite struct KVCacheTests {
    @Test func storeReturnsEveryRowAndTruncateRollsBack() {
        let cache = KVCache(config: TinyConfigs.llama, maxLength: 6)  // width 2 KV heads × 4 = 8
        #expect(cache.width == 8 && cache.keys.count == 2)
        let k = Tensor(shape: [1, 2, 8], scalars: (0..<16).map(Float.init))
        let v = Tensor(shape: [1, 2, 8], scalars: (0..<16).map { Float(-$0) })
        let first = cache.store(layer: 1, keys: k, values: v)
        #expect(first.keys.shape == [1, 2, 8])
        cache.advance(by: 2)
        let k2 = Tensor(shape: [1, 1, 8], scalars: Array(repeating: 7, count: 8))
        let all = cache.store(layer: 1, keys: k2, values: k2)
        #expect(all.keys.shape == [1, 3, 8])
        #expect(all.keys.scalars == (0..<16).map(Float.init) + Array(repeating: 7, count: 8))
        #expect(all.values.scalars.prefix(16) == ArraySlice((0..<16).map { Float(-$0) }))
        cache.advance(by: 1)
        #expect(cache.length == 3 && cache.remaining == 3)
        cache.truncate(to: 1)
        #expect(cache.length == 1)
        let k3 = Tensor(shape: [1, 1, 8], scalars: Array(repeating: 9, count: 8))
        let rewritten = cache.store(layer: 1, keys: k3, values: k3)
        #expect(rewritten.keys.scalars == (0..<8).map(Float.init) + Array(repeating: 9, count: 8))
        cache.reset()
        #expect(cache.length == 0)
    }
}

/// Generation with a real tokenizer: decoded text, streaming deltas and stop strings.
@Suite struct TextGenerationTests {
    @Test func streamedDeltasConcatenateToTheTextAndStopStringsCut() throws {
        let tokenizer = try ChatTemplateTokenizerTests.tokenizer("gpt2")
        let config = ModelConfig(family: .gpt2, vocabSize: tokenizer.vocabSize, hiddenSize: 16, numLayers: 1, numHeads: 2, maxPositions: 64)
        let model = try TransformerModel(config: config, seed: 50)
        let generator = Generator(model: model, tokenizer: tokenizer)
        var streamed = ""
        let options = GenerationOptions(maxTokens: 16, sampler: Sampler(temperature: 1), seed: 2, stopAtEndOfSequence: false)
        let result = try generator.generate(prompt: "Hello world", options: options) { step in
            streamed += step.textDelta ?? ""
            return true
        }
        let text = try #require(result.text)
        #expect(text == tokenizer.decode(result.tokens))
        #expect(text.hasPrefix(streamed))
        #expect(!text.isEmpty)
        // Stopping at a piece of that text ends generation there and cuts the text before it.
        let stop = String(text.dropFirst(text.count / 2).prefix(2))
        var stopping = options
        stopping.stopStrings = [stop]
        let cut = try generator.generate(prompt: "Hello world", options: stopping)
        #expect(cut.stopReason == .stopString(stop))
        #expect(cut.text.map { text.hasPrefix($0) && !$0.contains(stop) } == true)
        #expect(cut.tokens.count <= result.tokens.count)
        #expect(throws: ModelError.tokenizerRequired) { try Generator(model: model).generate(prompt: "Hi") }
    }
}
