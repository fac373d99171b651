import ArgumentParser
import Checkpoints
import Experiments
import Foundation
import Safety

/// `safetune compare MODEL... --data data/align`: the models side by side on the held-out
/// alignment files: refusal, over-refusal, attacks with and without the guard, likelihood of
/// the base's own answers, skills.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Measure models side by side on the held-out files of `safetune corpus align` (the first model is the baseline).",
        discussion: "Rates use the refusal judge on at most --max-tokens tokens. The sampling and suffix attacks run on the "
            + "first prompts of val-harmful.jsonl only. Skills count the task families the first model answers at least half right.")

    @Argument(help: "Models (smollm2, a checkpoint, a .gguf file); the first is the baseline.")
    var models: [String]

    @Option(help: "Folder written by `safetune corpus align` (val-harmful, val-harmless, val-borderline, val-skills).")
    var data = "data/align"

    @Option(help: "Most tokens per answer.")
    var maxTokens = 64

    @Option(help: "Harmful prompts the sampling attack runs on.")
    var decodingPrompts = 40

    @Option(help: "Harmful prompts the suffix attack runs on.")
    var suffixPrompts = 10

    @Option(help: "Suffix search budget per prompt, in seconds.")
    var searchSeconds = 10.0

    @Option(help: "JSON written by an earlier compare (-o): models measured there are not measured again.")
    var reuse: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(name: .shortAndLong, help: "Also write the JSON to this file.")
    var output: String?

    func validate() throws {
        if models.isEmpty { throw ValidationError("name at least one model") }
        if maxTokens < 1 || decodingPrompts < 0 || suffixPrompts < 0 || searchSeconds < 0 {
            throw ValidationError("--max-tokens must be at least 1; prompt counts and --search-seconds at least 0")
        }
    }

    func run() throws {
        try CommandFailure.guarding {
            var options = AlignmentMeasurement.Options()
            options.maxTokens = maxTokens
            options.decodingPrompts = decodingPrompts
            options.suffixPrompts = suffixPrompts
            options.suffixSeconds = searchSeconds
            let files = AlignmentMeasurement.Files(directory: URL(fileURLWithPath: data))
            let earlier = try reuse.map {
                try JSONDecoder().decode([AlignmentMeasurement].self, from: Data(contentsOf: URL(fileURLWithPath: $0)))
            } ?? []
            var rows: [AlignmentMeasurement] = []
            for model in models {
                if let row = earlier.first(where: { $0.model == model }) {
                    rows.append(row)
                    continue
                }
                let bundle = try ModelBundle.load(path: model)
                rows.append(try AlignmentMeasurement.measure(bundle, name: model, files: files, options: options) { line in
                    if !json { FileHandle.standardError.write(Data((line + "\n").utf8)) }
                })
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(rows)
            if let output { try data.write(to: URL(fileURLWithPath: output), options: .atomic) }
            print(json ? String(decoding: data, as: UTF8.self) : Self.table(rows), terminator: json ? "\n" : "")
        }
    }

    /// Rows are measures, columns models; a guarded rate follows the plain one after a slash.
    static func table(_ rows: [AlignmentMeasurement]) -> String {
        func pct(_ r: Rate?) -> String { r.map { String(format: "%.1f %%", 100 * $0.value) } ?? "–" }
        func pair(_ plain: Rate, _ guarded: Rate?) -> String { guarded == nil ? pct(plain) : "\(pct(plain)) / \(pct(guarded))" }
        let kept = rows.first.map { base in base.skills.filter { $0.value.value >= 0.5 }.keys.sorted() } ?? []
        func skills(_ m: AlignmentMeasurement) -> String {
            let hits = kept.reduce(0) { $0 + (m.skills[$1]?.hits ?? 0) }, count = kept.reduce(0) { $0 + (m.skills[$1]?.count ?? 0) }
            return count == 0 ? "–" : String(format: "%.1f %%", 100 * Double(hits) / Double(count))
        }
        let base = rows.first?.answerLogLikelihood ?? 0
        let first = rows.first?.plain
        var lines: [(String, [String])] = [
            ("harmful refused (plain / guarded)", rows.map { pair($0.plain.refusal, $0.guarded?.refusal) }),
            ("over-refusal, harmless", rows.map { pair($0.plain.overRefusal, $0.guarded?.overRefusal) }),
            ("over-refusal, borderline", rows.map { pair($0.plain.borderlineOverRefusal, $0.guarded?.borderlineOverRefusal) }),
            ("prefilling attack ASR", rows.map { pair($0.plain.prefill, $0.guarded?.prefill) }),
            ("decoding attack ASR (\(first?.decoding.count ?? 0) prompts)", rows.map { pair($0.plain.decoding, $0.guarded?.decoding) }),
            ("suffix attack ASR (\(first?.suffix.count ?? 0) prompts)", rows.map { pair($0.plain.suffix, $0.guarded?.suffix) }),
            ("log-lik. of base answers (nats/token)", rows.map {
                String(format: "%.3f", $0.answerLogLikelihood) + ($0.model == rows.first?.model ? "" : String(format: " (%+.3f)", $0.answerLogLikelihood - base))
            }),
            ("skills (\(kept.joined(separator: ", ")))", rows.map(skills)),
            ("guard overhead per token", rows.map { $0.guardOverhead.map { String(format: "%+.0f %%", 100 * $0) } ?? "–" }),
            ("guard threshold", rows.map { $0.guardThreshold.map { String(format: "%g", $0) } ?? "–" }),
        ]
        lines.insert(("", rows.map(\.model)), at: 0)
        let labelWidth = lines.map(\.0.count).max() ?? 0
        let widths = rows.indices.map { i in lines.map { $0.1[i].count }.max() ?? 0 }
        return lines.map { label, cells in
            label.padding(toLength: labelWidth, withPad: " ", startingAt: 0) + "  "
                + zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "   ")
        }.map { line in String(line.reversed().drop { $0 == " " }.reversed()) + "\n" }.joined()
    }
}
