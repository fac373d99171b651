import ArgumentParser
import Experiments
import Foundation
import Training

/// `safetune corpus build`: the reproducible instruction corpus the test-suite model is
/// trained on; `safetune corpus align`: the data the aligned SmolLM2 is trained and measured on.
struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Build SafeTune's instruction corpus from the shipped prompt sets.",
        subcommands: [Build.self, Align.self]
    )

    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write train.jsonl and val.jsonl (harmful → refusals, harmless → compliance, skill tasks), plus finetune.jsonl, attack.jsonl, anchors.jsonl and calibration.jsonl.")

        @Option(help: "Folder with prompts/ and facts/ (the project's data folder).")
        var source = "data"
        @Option(name: .shortAndLong, help: "Output folder.")
        var output: String
        @Option(help: "Random seed.")
        var seed = CorpusBuilder.Parameters.defaultSeed
        @Option(help: "Most frequent words the copying tasks train on (validation words stay the same).")
        var copyWords = CorpusBuilder.Parameters.defaultCopyWords
        @Flag(help: "Print a JSON summary.")
        var json = false

        func run() throws { try CommandFailure.guarding { try execute() } }

        /// The command's work; a thrown error becomes one `error:` line and exit status 2.
        private func execute() throws {
            var parameters = CorpusBuilder.Parameters(source: URL(fileURLWithPath: source))
            parameters.seed = seed
            guard copyWords >= 40 else { throw CommandFailure.report("--copy-words must be at least 40") }
            parameters.copyWords = copyWords
            let builder = CorpusBuilder(parameters)
            let corpus = try builder.build()
            try builder.write(corpus, to: URL(fileURLWithPath: output))
            func counts(_ r: [CorpusRecord]) -> [String: Int] { Dictionary(grouping: r, by: \.kind.rawValue).mapValues(\.count) }
            if json {
                let summary: [String: Any] = ["output": output, "train": counts(corpus.train), "validation": counts(corpus.validation)]
                let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("wrote \(output)/train.jsonl (\(corpus.train.count) records), val.jsonl (\(corpus.validation.count)), "
                      + "finetune.jsonl (\(corpus.finetune.count)), attack.jsonl (\(corpus.attack.count)), anchors.jsonl (\(corpus.anchors.count)), calibration.jsonl (\(corpus.calibration.count)), "
                      + "compliance.jsonl (\(corpus.compliance.count))")
                print("train: \(counts(corpus.train).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
            }
        }
    }

    struct Align: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the aligned SmolLM2's data: train.jsonl (refusals, the base's own harmless and borderline answers), compliance.jsonl, calibration.jsonl and held-out val-{harmful,harmless,borderline,skills}.jsonl.")

        @Option(help: "The project's data folder (prompts/, facts/, distill/, borderline/).")
        var source = "data"
        @Option(name: .shortAndLong, help: "Output folder.")
        var output: String
        @Option(help: "Distilled harmless answers to train on (the rest calibrate the guard).")
        var harmless = AlignmentCorpus.Parameters(source: URL(fileURLWithPath: "data")).harmlessTrain

        func run() throws {
            try CommandFailure.guarding {
                var parameters = AlignmentCorpus.Parameters(source: URL(fileURLWithPath: source))
                parameters.harmlessTrain = harmless
                let builder = AlignmentCorpus(parameters)
                let files = try builder.build()
                try builder.write(files, to: URL(fileURLWithPath: output))
                print(files.named.map { "\($0.0) \($0.1.count)" }.joined(separator: ", "))
            }
        }
    }
}
