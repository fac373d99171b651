import ArgumentParser
import Engine
import Foundation
import Models
import Tokenizers

/// `safetune generate MODEL --prompt TEXT`: text generation from a model folder.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a model (a Hugging Face folder: config.json, model.safetensors, tokenizer.json).")

    @Argument(help: "Model folder.")
    var model: String

    @Option(help: "Prompt text.")
    var prompt: String

    @Option(help: "Most tokens to generate.")
    var maxTokens: Int = 128

    @Option(help: "Sampling temperature; 0 decodes greedily.")
    var temperature: Float = 0

    @Option(help: "Sample only among the K most likely tokens.")
    var topK: Int?

    @Option(help: "Sample only among the most likely tokens whose probability reaches P.")
    var topP: Float?

    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "Chat template applied to the prompt: llama2, chatml, instruction, or auto (from the tokenizer). Default: none.")
    var template: String?

    @Option(name: .customLong("stop"), help: "Stop when the output contains this text (repeatable).")
    var stopStrings: [String] = []

    @Flag(help: "Print one JSON object instead of streaming text.")
    var json = false

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be at least 0") }
        if temperature < 0 || !temperature.isFinite { throw ValidationError("--temperature must be a finite number ≥ 0") }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        let loaded = try LoadedModel(folder: model)
        guard let tokenizer = loaded.tokenizer else {
            throw ValidationError("\(model): no tokenizer.json; generate needs one")
        }
        var text = prompt
        var stopTokens: Set<Int> = []
        if let template {
            let chat = try ChatTemplate.named(template, tokenizer: tokenizer)
            text = chat.prompt(prompt)
            if let end = tokenizer.id(of: chat.endOfTurn) { stopTokens.insert(end) }
        }
        let options = GenerationOptions(
            maxTokens: maxTokens, sampler: Sampler(temperature: temperature, topK: topK, topP: topP), seed: seed,
            stopTokens: stopTokens, stopStrings: stopStrings)
        let promptIds = tokenizer.encode(text)
        let generator = Generator(model: loaded.model, tokenizer: tokenizer)
        if json {
            let result = try generator.generate(prompt: promptIds, options: options)
            let object: [String: Any] = [
                "prompt": text, "prompt_tokens": promptIds, "tokens": result.tokens,
                "text": result.text ?? "", "stop_reason": result.stopReason.description,
            ]
            try printJSON(object)
        } else {
            let result = try generator.generate(prompt: promptIds, options: options) { step in
                if let delta = step.textDelta, !delta.isEmpty {
                    FileHandle.standardOutput.write(Data(delta.utf8))
                }
                return true
            }
            // A stop string was printed before it was recognised; the final text excludes it.
            FileHandle.standardOutput.write(Data("\n".utf8))
            if case .stopString = result.stopReason {} else { return }
            FileHandle.standardError.write(Data("[stopped at \(result.stopReason)]\n".utf8))
        }
    }
}

/// A model folder loaded for inference: the model and, when present, its tokenizer.
struct LoadedModel {
    let model: TransformerModel
    let tokenizer: Tokenizer?

    /// Reads `config.json`, `model.safetensors` and `tokenizer.json` (optional) from `folder`.
    init(folder: String) throws {
        let dir = URL(fileURLWithPath: folder)
        let config = try ModelConfig.huggingFace(contentsOf: dir.appendingPathComponent("config.json"))
        let weights = try readHuggingFaceWeights(folder: dir)
        model = try TransformerModel(config: config, weights: weights, trainable: false)
        let tokenizerURL = dir.appendingPathComponent("tokenizer.json")
        tokenizer = FileManager.default.fileExists(atPath: tokenizerURL.path) ? try Tokenizer(contentsOf: tokenizerURL) : nil
    }
}

/// Writes `object` as one line of JSON with sorted keys.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
