import ArgumentParser
import Checkpoints
import Engine
import Foundation
import Models
import Tokenizers

/// `safetune generate MODEL --prompt TEXT`: text generation from a model folder.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a model (a Hugging Face folder or a SafeTune checkpoint).")

    @Argument(help: "Hugging Face model folder (config.json, model.safetensors, tokenizer.json) or SafeTune checkpoint.")
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

    func run() throws { try CommandFailure.guarding { try execute() } }

    /// The command's work; a thrown error becomes one `error:` line and exit status 2.
    private func execute() throws {
        let loaded = try LoadedModel(path: model)
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

/// A model loaded for inference, with its tokenizer when it has one.
struct LoadedModel {
    let model: TransformerModel
    let tokenizer: Tokenizer?

    /// Reads a Hugging Face folder (`config.json`, `model.safetensors` or shards,
    /// `tokenizer.json`) or a SafeTune checkpoint file.
    init(path: String) throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("\(path): no such model folder or checkpoint")
        }
        let checkpoint = isDirectory.boolValue
            ? try HuggingFaceModel.importModel(from: url)
            : try Checkpoint.read(from: url)
        if checkpoint.isAdapterOnly {
            throw ValidationError("\(path): an adapter-only checkpoint needs its base model")
        }
        if checkpoint.adapters != nil {
            FileHandle.standardError.write(Data("warning: \(path): adapters are not applied; using the base weights\n".utf8))
        }
        model = try TransformerModel(config: checkpoint.config, weights: checkpoint.weights, trainable: false)
        tokenizer = try checkpoint.tokenizerJSON.map { (data) throws in try Tokenizer(data: data, source: path + " (tokenizer.json)") }
    }
}

/// Writes `object` as one line of JSON with sorted keys.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
