import Foundation
import Models

/// What SA-ESS guarded decoding costs per generated token, against unguarded decoding of
/// the same prompts by the same model.
///
/// The two decoders alternate prompt by prompt (and swap which goes first), so machine
/// load hits both alike; both generate up to `tokens` tokens without stopping at the end
/// of sequence, so answers are long enough for the per-token cost, not the prompt, to
/// dominate. Seconds per token are totals over all prompts divided by tokens generated.
public struct GuardOverhead: Sendable, Equatable, Codable {
    /// Prompts decoded by each decoder.
    public var prompts: Int
    /// Token budget per answer.
    public var tokens: Int
    /// Tokens generated (guarded: the inserted refusal prefix included).
    public var guardedTokens: Int
    public var unguardedTokens: Int
    public var guardedSecondsPerToken: Double
    public var unguardedSecondsPerToken: Double
    /// Extra forward passes of the guard's checks per generated token.
    public var probesPerToken: Double

    /// Guarded over unguarded time per token, minus one (the goal: at most 0.2).
    public var overhead: Double { guardedSecondsPerToken / unguardedSecondsPerToken - 1 }

    /// Decodes every prompt (ids with the chat template applied, without CLS) once with
    /// `guarded` and once with a plain KV-cache generator over `unguarded`.
    public static func measure(guarded: GuardedDecoder, unguarded: TransformerModel, prompts: [[Int]],
                               tokens: Int = 64) throws(ModelError) -> GuardOverhead {
        let options = GenerationOptions(maxTokens: tokens, stopAtEndOfSequence: false)
        let plain = Generator(model: unguarded)
        var seconds = (guarded: 0.0, unguarded: 0.0), counts = (guarded: 0, unguarded: 0), probes = 0
        func timed<T>(_ body: () throws(ModelError) -> T) throws(ModelError) -> (T, Double) {
            let start = DispatchTime.now().uptimeNanoseconds
            let value = try body()
            return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        for (i, prompt) in prompts.enumerated() {
            for guardedTurn in (i % 2 == 0 ? [true, false] : [false, true]) {
                if guardedTurn {
                    let (r, s) = try timed { () throws(ModelError) in try guarded.generate(prompt: prompt, options: options) }
                    seconds.guarded += s
                    counts.guarded += r.tokens.count
                    probes += r.probes
                } else {
                    let (r, s) = try timed { () throws(ModelError) in try plain.generate(prompt: prompt, options: options) }
                    seconds.unguarded += s
                    counts.unguarded += r.tokens.count
                }
            }
        }
        return GuardOverhead(prompts: prompts.count, tokens: tokens, guardedTokens: counts.guarded, unguardedTokens: counts.unguarded,
                             guardedSecondsPerToken: seconds.guarded / Double(max(counts.guarded, 1)),
                             unguardedSecondsPerToken: seconds.unguarded / Double(max(counts.unguarded, 1)),
                             probesPerToken: Double(probes) / Double(max(counts.guarded, 1)))
    }
}
