import ArgumentParser
import Foundation
import Tokenizers

/// `safetune tokenizer ...`: tokenizer maintenance commands.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Build tokenizers.",
        subcommands: [Train.self]
    )

    /// `safetune tokenizer train`: trains a byte-level BPE tokenizer on text files.
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a byte-level BPE tokenizer (GPT-2 style) and write tokenizer.json."
        )

        @Argument(help: "UTF-8 text files to train on.")
        var corpus: [String]

        @Option(name: .long, help: "Target vocabulary size, including special tokens and the 256 byte tokens.")
        var vocab: Int

        @Option(name: [.short, .customLong("output")], help: "Where to write tokenizer.json.")
        var output: String

        @Option(name: .long, help: "A special token (repeatable); ids follow the order given.")
        var special: [String] = []

        @Option(name: .long, help: "Minimum pair frequency for a merge.")
        var minFrequency: Int = 2

        @Flag(name: .long, help: "Print a JSON summary.")
        var json = false

        func run() throws { try CommandFailure.guarding { try execute() } }

        /// The command's work; a thrown error becomes one `error:` line and exit status 2.
        private func execute() throws {
            var texts: [String] = []
            for path in corpus {
                let url = URL(fileURLWithPath: path)
                let data: Data
                do { data = try Data(contentsOf: url) } catch {
                    throw TokenizerError.unreadable(file: path, reason: error.localizedDescription)
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    throw TokenizerError.unreadable(file: path, reason: "not valid UTF-8")
                }
                texts.append(text)
            }
            let trainer = BPETrainer(vocabSize: vocab, minFrequency: minFrequency, specialTokens: special)
            let data = try trainer.train(texts: texts)
            let outURL = URL(fileURLWithPath: output)
            let tokenizer = try Tokenizer(data: data, source: outURL.lastPathComponent)
            do { try data.write(to: outURL, options: .atomic) } catch {
                throw TokenizerError.unreadable(file: output, reason: "cannot write: \(error.localizedDescription)")
            }
            if json {
                let summary: JSONValue = .object([
                    ("output", .string(output)), ("vocab_size", .int(tokenizer.vocabSize)),
                    ("special_tokens", .array(special.map { .string($0) })),
                ])
                FileHandle.standardOutput.write(summary.serialized())
            } else {
                print("wrote \(output): vocabulary \(tokenizer.vocabSize)")
            }
        }
    }
}
