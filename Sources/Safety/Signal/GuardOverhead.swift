import Foundation
import Models

/// What SA-ESS guarded decoding costs per generated token, against unguarded decoding of
/// the same prompts by the same model.
///
/// Three decoders take turns on every prompt, in an order that rotates, so that machine
/// load hits them alike: the guard; the same decoder with its checks off (CLS layout
/// only), which isolates the checks' cost; and the plain KV-cache generator a user without
/// SA-ESS would run. All generate up to `tokens` tokens without stopping at the end of
/// sequence, so the per-token cost, not the prompt, dominates. Seconds per token are
/// totals over all prompts divided by tokens generated.
public struct GuardOverhead: Sendable, Equatable, Codable {
    /// Prompts decoded by each decoder.
    public var prompts: Int
    /// Token budget per answer.
    public var tokens: Int
    /// Tokens generated (guarded: the inserted refusal prefix included).
    public var guardedTokens: Int
    public var unguardedTokens: Int
    public var guardedSecondsPerToken: Double
    /// The plain generator.
    public var unguardedSecondsPerToken: Double
    /// The guarded decoder with its checks off.
    public var checksOffSecondsPerToken: Double
    /// Extra forward passes of the guard's checks per generated token.
    public var probesPerToken: Double

    /// Guarded over unguarded (plain generator) time per token, minus one (the goal: at most 0.2).
    public var overhead: Double { guardedSecondsPerToken / unguardedSecondsPerToken - 1 }
    /// Guarded over checks-off time per token, minus one: the checks alone.
    public var checksOverhead: Double { guardedSecondsPerToken / checksOffSecondsPerToken - 1 }

    /// Decodes every prompt (ids with the chat template applied, without CLS) with
    /// `guarded`, with `guarded`'s model and signal with checks off, and with a plain
    /// KV-cache generator over `unguarded`. Throws `ModelError` from decoding.
    public static func measure(guarded: GuardedDecoder, unguarded: TransformerModel, prompts: [[Int]],
                               tokens: Int = 64) throws -> GuardOverhead {
        let options = GenerationOptions(maxTokens: tokens, stopAtEndOfSequence: false)
        var off = guarded.options
        off.enabled = false
        let checksOff = try GuardedDecoder(model: guarded.model, tokenizer: guarded.tokenizer, signal: guarded.signal, options: off)
        let plain = Generator(model: unguarded)
        // seconds and tokens per decoder: 0 guarded, 1 checks off, 2 plain.
        var seconds = [0.0, 0.0, 0.0], counts = [0, 0, 0], probes = 0
        for (i, prompt) in prompts.enumerated() {
            for turn in 0..<3 {
                let which = (i + turn) % 3
                let start = DispatchTime.now().uptimeNanoseconds
                switch which {
                case 0:
                    let r = try guarded.generate(prompt: prompt, options: options)
                    counts[0] += r.tokens.count
                    probes += r.probes
                case 1: counts[1] += try checksOff.generate(prompt: prompt, options: options).tokens.count
                default: counts[2] += try plain.generate(prompt: prompt, options: options).tokens.count
                }
                seconds[which] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
        }
        func perToken(_ k: Int) -> Double { seconds[k] / Double(max(counts[k], 1)) }
        return GuardOverhead(prompts: prompts.count, tokens: tokens, guardedTokens: counts[0], unguardedTokens: counts[2],
                             guardedSecondsPerToken: perToken(0), unguardedSecondsPerToken: perToken(2),
                             checksOffSecondsPerToken: perToken(1), probesPerToken: Double(probes) / Double(max(counts[0], 1)))
    }
}
