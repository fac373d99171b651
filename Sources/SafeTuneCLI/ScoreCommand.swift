import ArgumentParser
import Checkpoints
import Engine
import Foundation
import Models
import Training

/// `safetune score MODEL --text TEXT`: log-probability of each token given the ones before it.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Per-token log-probabilities of a text under a model, and their sum.")

    @Argument(help: "Hugging Face model folder (config.json, model.safetensors, tokenizer.json) or SafeTune checkpoint.")
    var model: String

    @Option(help: "Text to score.")
    var text: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws { try CommandFailure.guarding { try execute() } }

    /// The command's work; a thrown error becomes one `error:` line and exit status 2.
    private func execute() throws {
        let loaded = try ModelBundle.load(path: model)
        guard let tokenizer = loaded.tokenizer else {
            throw ValidationError("\(model): no tokenizer.json; score needs one")
        }
        let ids = tokenizer.encode(text)
        let scores = try loaded.model.tokenLogprobs(ids)
        let total = scores.reduce(0) { $0 + Double($1) }
        if json {
            var tokens: [[String: Any]] = []
            for (i, id) in ids.enumerated() {
                var entry: [String: Any] = ["id": id, "text": tokenizer.decode([id])]
                // The first token has no context to be predicted from.
                entry["logprob"] = i == 0 ? NSNull() : Double(scores[i - 1])
                tokens.append(entry)
            }
            try printJSON(["tokens": tokens, "sum": total, "scored": scores.count])
        } else {
            for (i, id) in ids.enumerated() {
                let score = i == 0 ? "      -" : String(format: "%8.4f", scores[i - 1])
                print("\(score)  \(id)\t\(tokenizer.decode([id]).debugDescription)")
            }
            print(String(format: "sum %.4f over %d tokens", total, scores.count))
        }
    }
}
