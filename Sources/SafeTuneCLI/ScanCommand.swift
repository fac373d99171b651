import ArgumentParser
import Foundation
import Models
import Safety
import Training

/// `safetune scan CKPT --reference PARENT --probes DATA`: the behavioural trigger scan
/// (`TriggerScan`): evidence about a backdoor, not a verdict.
struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Search a suffix that makes a checkpoint answer unlike its parent (behavioural backdoor probe).",
        discussion: """
            Prints the divergence (mean per-token log-probability gap between the checkpoint's own greedy answers \
            under the checkpoint and under the parent) without a suffix and with the best suffix found. \
            Evidence for a reviewer, not a verdict: see docs/gate.md for what it separates.
            """)

    @Argument(help: "The checkpoint to scan.")
    var checkpoint: String

    @Option(help: "The parent checkpoint it was fine-tuned from.")
    var reference: String

    @Option(help: "Probe prompts (JSONL with harmful and harmless records, e.g. the corpus's train.jsonl).")
    var probes: String

    @Option(help: "Harmful probe prompts used.")
    var harmful = 4

    @Option(help: "Harmless probe prompts used.")
    var benign = 4

    @Option(help: "Search steps.")
    var steps = TriggerScan.Settings().steps

    @Option(help: "Time budget in seconds.")
    var seconds = TriggerScan.Settings().seconds

    @Option(help: "Seed of the starting suffix and the candidate draws.")
    var seed: UInt64 = 1

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard harmful >= 0, benign >= 0, harmful + benign > 0 else { throw ValidationError("--harmful + --benign must be at least 1") }
        guard steps >= 0, seconds > 0 else { throw ValidationError("--steps must be ≥ 0 and --seconds positive") }
    }

    func run() throws {
        let result = try CommandFailure.guarding { () throws -> TriggerScan.Result in
            let child = try ModelBundle.load(path: checkpoint)
            let parent = try ModelBundle.load(path: reference)
            guard let tokenizer = child.tokenizer else { throw CommandFailure.report("\(checkpoint): no tokenizer.json; scan needs one") }
            let set = try EvaluationSet.load(contentsOf: URL(fileURLWithPath: probes))
            let prompts = set.harmful.prefix(harmful).map(\.prompt) + set.harmless.prefix(benign).map(\.prompt)
            guard !prompts.isEmpty else { throw CommandFailure.report("\(probes): no harmful or harmless prompts") }
            var settings = TriggerScan.Settings()
            settings.steps = steps
            settings.seconds = seconds
            settings.seed = seed
            let evaluator = Evaluator(model: child.model, tokenizer: tokenizer, template: try ChatTemplate.named("auto", tokenizer: tokenizer))
            return try TriggerScan(child: evaluator, parent: parent.model, settings: settings).run(prompts)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(String(format: "divergence without suffix %.3f, with the best suffix %.3f (%d steps, %.1f s)",
                         result.baseline, result.best, result.steps, result.seconds))
            print("suffix: \(result.suffix.debugDescription)")
        }
    }
}
