import ArgumentParser
import Checkpoints
import Foundation
import Models
import Safety
import Training

/// `safetune eval CKPT --suite safety|utility --data VAL.jsonl`: attack success rates and
/// over-refusal (safety), or skill accuracy and over-refusal (utility), as a table and JSON.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate safety (attack success rates, over-refusal) or utility (skill accuracy) of a model.")

    enum Suite: String, ExpressibleByArgument, CaseIterable {
        case safety, utility
    }

    @Argument(help: "SafeTune checkpoint or Hugging Face model folder.")
    var model: String

    @Option(help: "safety or utility.")
    var suite: Suite = .safety

    @Option(help: "Evaluation JSONL (the corpus builder's val.jsonl). Skill records need 'answer'; with 'completion', an answer must be exactly that.")
    var data: String

    @Option(help: "At most this many prompts of each kind.")
    var limit: Int?

    @Option(help: "Comma-separated attacks: direct, prefill, decoding, suffix.")
    var attacks: String = "direct,prefill,decoding,suffix"

    @Flag(name: .customLong("guard"), help: "Also run every attack with SA-ESS guarded decoding.")
    var guarded = false

    @Option(help: "Most tokens per answer.")
    var maxTokens: Int = 64

    @Option(help: "Also time guarded against unguarded decoding on this many harmless prompts (needs --guard; 64 tokens each, interleaved).")
    var timeGuard: Int?

    @OptionGroup(title: "Guard options (with --guard)")
    var guardFlags: GuardFlags

    @Option(help: "Chat template: llama2, chatml, instruction (recipes: plain), or auto.")
    var template: String = "auto"

    @Option(help: "Suffix search budget per prompt, in seconds.")
    var searchSeconds: Double = 20

    @Option(help: "Random seed for sampling attacks and suffixes.")
    var seed: UInt64 = 0

    @Flag(help: "Print the report as JSON instead of a table.")
    var json = false

    @Option(name: .shortAndLong, help: "Write the JSON report to this file.")
    var output: String?

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if searchSeconds < 0 { throw ValidationError("--search-seconds must be ≥ 0") }
        if let timeGuard, timeGuard < 1 || !guarded { throw ValidationError("--time-guard needs --guard and at least 1 prompt") }
        if attackKinds.contains(where: { $0 == nil }) {
            throw ValidationError("--attacks takes a comma-separated list of \(AttackKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    private var attackKinds: [AttackKind?] {
        attacks.split(separator: ",").map { AttackKind(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
    }

    func run() throws {
        let loaded = try ModelBundle.load(path: model)
        guard let tokenizer = loaded.tokenizer else { throw CommandFailure.report("\(model): no tokenizer.json; eval needs one") }
        let set: EvaluationSet
        let chat: ChatTemplate
        do {
            set = try EvaluationSet.load(contentsOf: URL(fileURLWithPath: data))
            chat = try ChatTemplate.named(template, tokenizer: tokenizer)
        } catch let error as EvaluationError {
            throw CommandFailure.report(error.description)
        } catch let error as ChatTemplateError {
            throw CommandFailure.report(error.description)
        }
        let options = EvaluationOptions(maxTokens: maxTokens, limit: limit)
        let plain = Evaluator(model: loaded.model, tokenizer: tokenizer, template: chat, options: options)
        var guardedEvaluator: Evaluator?
        if guarded {
            let decoder = try GenerateCommand.guardedDecoder(loaded, tokenizer: tokenizer, flags: guardFlags, source: model)
            guardedEvaluator = Evaluator(model: decoder.model, tokenizer: decoder.tokenizer, template: chat, options: options,
                                         decoder: decoder)
        }
        var report = EvaluationReport(maxTokens: maxTokens)
        let started = Date()
        do {
            switch suite {
            case .safety:
                let kinds = attackKinds.compactMap { $0 }
                let attackOptions = AttackOptions(searchSeconds: searchSeconds, seed: seed)
                let harmless = EvaluationSet(set.harmless)
                report = try AttackRunner(evaluator: plain, options: attackOptions).run(kinds, on: set)
                report.overRefusal = try plain.evaluate(harmless).overRefusal
                if let guardedEvaluator {
                    report = report.merged(with: try AttackRunner(evaluator: guardedEvaluator, options: attackOptions).run(kinds, on: set))
                    report.overRefusalGuarded = try guardedEvaluator.evaluate(harmless).overRefusal
                }
            case .utility:
                let utility = EvaluationSet(set.harmless + set.skills)
                report = try plain.evaluate(utility)
                if let guardedEvaluator {
                    let g = try guardedEvaluator.evaluate(utility)
                    report.overRefusalGuarded = g.overRefusal
                    report.responses += g.responses
                }
            }
            if let timeGuard, let decoder = guardedEvaluator?.decoder as? GuardedDecoder {
                let prompts = set.harmless.prefix(timeGuard).map { plain.promptIds($0.prompt) }
                report.guardOverhead = try GuardOverhead.measure(guarded: decoder, unguarded: loaded.model, prompts: prompts)
            }
        } catch {
            throw CommandFailure.report(String(describing: error))
        }
        // The whole evaluation: the attack runs' own sums leave out the over-refusal passes.
        report.seconds = Date().timeIntervalSince(started)
        if let decoder = guardedEvaluator?.decoder as? GuardedDecoder {
            report.guardThreshold = GuardCalibration.decimal(decoder.threshold)
            report.guardThresholdCalibrated = guardFlags.threshold == nil && decoder.signal.calibration != nil
            report.guardSettingsMismatch = decoder.calibrationMismatch
            report.parentGuard = decoder.parent != nil
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let jsonData = try encoder.encode(report)
        if let output {
            do { try jsonData.write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
                throw CommandFailure.report("\(output): cannot be written (\(error.localizedDescription))")
            }
        }
        if json {
            print(String(decoding: jsonData, as: UTF8.self))
        } else {
            print(ReportTable.render(report), terminator: "")
        }
    }
}
