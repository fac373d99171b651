import ArgumentParser
import Checkpoints
import Foundation
import Models
import Safety
import Training

/// `safetune calibrate-guard CKPT --prompts FILE`: the SA-ESS guard's threshold for an
/// over-refusal budget, stored with the checkpoint's safety signal.
struct CalibrateGuardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate-guard",
        abstract: "Choose the SA-ESS guard's threshold for an over-refusal budget on held-out harmless prompts and store it in the checkpoint.",
        discussion: """
            Tries thresholds from 0.99 down and keeps the lowest at which the guard turns at most --budget of the \
            harmless prompts into refusals (keyword judge: a guarded refusal where the unguarded answer was none; \
            the model's own refusals are not charged). `generate --guard` and `eval --guard` then use it \
            unless --threshold is given. Use prompts the guard will not be evaluated on (the corpus builder's \
            calibration.jsonl). The threshold is chosen for the guard the flags describe (--schedule, --tau; \
            the defaults are what `eval --guard` uses) and recorded with them: another schedule checks other \
            windows, and `eval` and `generate` say so when they use the threshold with one. The checkpoint's \
            weights are unchanged.
            """)

    @Argument(help: "SafeTune checkpoint (.h5) with a safety signal.")
    var checkpoint: String

    @Option(help: "JSONL whose harmless records are the calibration prompts.")
    var prompts: String

    @Option(help: "Largest share of harmless prompts the guard may turn into refusals.")
    var budget = GuardCalibration.defaultBudget

    @Option(help: "Use at most this many harmless prompts.")
    var limit: Int?

    @Option(help: "Most tokens per answer.")
    var maxTokens = 32

    @Option(help: "Chat template: llama2, chatml, instruction (recipes: plain), or auto.")
    var template = "auto"

    @Option(name: .shortAndLong, help: "Write the calibrated checkpoint here (default: replace CKPT, atomically).")
    var output: String?

    @OptionGroup var checks: GuardCheckFlags

    @Flag(help: "Print the calibration as JSON.")
    var json = false

    func validate() throws {
        if !(budget >= 0 && budget < 1) { throw ValidationError("--budget must lie in [0, 1)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
    }

    func run() throws {
        try CommandFailure.guarding {
            let loaded = try ModelBundle.load(path: checkpoint)
            guard let group = loaded.checkpoint.signal else {
                throw CommandFailure.report("\(checkpoint): no safety signal to calibrate (train with safety.signal.enabled)")
            }
            guard let tokenizer = loaded.tokenizer else { throw CommandFailure.report("\(checkpoint): no tokenizer.json") }
            let harmless = try EvaluationSet.load(contentsOf: URL(fileURLWithPath: prompts)).harmless.map(\.prompt)
            let chosen = Array(harmless.prefix(limit ?? harmless.count))
            guard !chosen.isEmpty else { throw CommandFailure.report("\(prompts): no harmless records") }
            let signal = try SafetySignal(group: group)
            let options = checks.options(threshold: nil)
            let parent = checks.parentGuard ? try GuardedDecoder.parentGuard(of: loaded.checkpoint, file: loaded.source, options: options) : nil
            let calibration = try GuardCalibration.measure(model: loaded.model, tokenizer: tokenizer,
                                                           template: try ChatTemplate.named(template, tokenizer: tokenizer),
                                                           signal: signal, harmless: chosen, budget: budget, maxTokens: maxTokens,
                                                           options: options, parent: parent)
            signal.calibration = calibration
            // Read again as stored (the bundle holds no weights; an adapter-only file stays one).
            var stored = try Checkpoint.read(from: loaded.source)
            stored.signal = signal.tensorGroup
            let destination = URL(fileURLWithPath: output ?? checkpoint)
            try stored.write(to: destination)
            if json {
                print(calibration.json)
            } else {
                for t in calibration.trials {
                    print(String(format: "threshold %-6g over-refusal %5.1f %% (added by the guard %4.1f %%, interventions %4.1f %%)",
                                 t.threshold, 100 * t.overRefusal, 100 * (t.addedRefusal ?? .nan), 100 * t.interventions))
                }
                print(calibration.summary)
                print("wrote \(destination.path)")
            }
        }
    }
}
