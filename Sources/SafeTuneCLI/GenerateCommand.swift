import ArgumentParser
import Checkpoints
import Engine
import Foundation
import Models
import Safety
import Tokenizers
import Training

/// `safetune generate MODEL --prompt TEXT`: text generation from a model folder;
/// `--prompts FILE --output FILE` answers every prompt of a JSONL file, in batches.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a model (a Hugging Face folder or a SafeTune checkpoint).")

    @Argument(help: "Hugging Face model folder (config.json, model.safetensors, tokenizer.json) or SafeTune checkpoint.")
    var model: String

    @Option(help: "Prompt text.")
    var prompt: String?

    @Option(help: "JSONL file of prompts (`{\"prompt\": ...}` per line, other keys kept): answers them all, decoded in batches, into --output.")
    var prompts: String?

    @Option(help: "With --prompts: the JSONL file to write, each input record with its `completion` added (training data).")
    var output: String?

    @Option(help: "With --prompts: sequences decoded side by side.")
    var batch = Generator.defaultBatch

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

    @Option(help: "Chat template applied to the prompt: llama2, chatml, instruction (recipes: plain), auto (from the tokenizer), or none (the prompt as it is). Default: the template a SafeTune checkpoint was trained with, else the model's own (GGUF, Hugging Face), else none.")
    var template: String?

    @Option(name: .customLong("stop"), help: "Stop when the output contains this text (repeatable).")
    var stopStrings: [String] = []

    @Flag(help: "Print one JSON object instead of streaming text.")
    var json = false

    @Flag(name: .customLong("guard"), inversion: .prefixedNo,
          help: "SA-ESS guarded decoding with the checkpoint's safety signal (JSON adds the classification trace). Default: on when the signal's threshold was calibrated (calibrate-guard).")
    var guarded: Bool?

    @OptionGroup(title: "Guard options")
    var guardFlags: GuardFlags

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be at least 0") }
        if temperature < 0 || !temperature.isFinite { throw ValidationError("--temperature must be a finite number ≥ 0") }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
        if (prompt == nil) == (prompts == nil) { throw ValidationError("give either --prompt or --prompts") }
        if prompts != nil, output == nil { throw ValidationError("--prompts needs --output") }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
    }

    /// The guard for `loaded`: its checkpoint's signal, or (with a warning) a fresh untrained
    /// one; with `parentGuard`, the guard of the model it was fine-tuned from as well.
    static func guardedDecoder(_ loaded: ModelBundle, tokenizer: Tokenizer, flags: GuardFlags,
                               source: String) throws -> GuardedDecoder {
        let options = flags.options
        do {
            if let group = loaded.checkpoint.signal {
                let parent = flags.checks.parentGuard ? try GuardedDecoder.parentGuard(of: loaded.checkpoint, file: loaded.source, options: options) : nil
                return try GuardedDecoder(model: loaded.model, tokenizer: tokenizer, signal: try SafetySignal(group: group), options: options,
                                          parent: parent)
            }
            FileHandle.standardError.write(Data("warning: \(source): no safety signal; using a fresh untrained head\n".utf8))
            let added = try SafetySignal.adding(to: loaded.model, tokenizer: tokenizer, trainable: false)
            return try GuardedDecoder(model: added.model, tokenizer: added.tokenizer, signal: added.signal, options: options)
        } catch {
            throw CommandFailure.report("\(source): \(error)")
        }
    }

    private func runGuarded(_ loaded: ModelBundle, tokenizer: Tokenizer, text: String, options: GenerationOptions,
                            ends: Set<Int>) throws {
        let decoder = try Self.guardedDecoder(loaded, tokenizer: tokenizer, flags: guardFlags, source: model)
        if let mismatch = decoder.calibrationMismatch {
            FileHandle.standardError.write(Data("note: the guard's threshold was \(mismatch)\n".utf8))
        }
        let promptIds = tokenizer.encode(text)
        let start = Date()
        let result = try decoder.generate(prompt: promptIds, options: options)
        let seconds = Date().timeIntervalSince(start)
        guard json else {
            let answer = result.tokens.last.map(ends.contains) == true ? tokenizer.decode(Array(result.tokens.dropLast())) : result.text
            FileHandle.standardOutput.write(Data((answer + "\n").utf8))
            if let at = result.refusalAt {
                FileHandle.standardError.write(Data("[guard: refusal inserted at token \(at)]\n".utf8))
            }
            return
        }
        let trace: [[String: Any]] = result.trace.map { c in
            ["step": c.step, "p_malicious": Double(c.pMalicious), "action": c.action.rawValue,
             "window": ["query": c.window.query, "from": c.window.from, "to": c.window.to]]
        }
        var object: [String: Any] = [
            "prompt": text, "prompt_tokens": promptIds, "tokens": result.tokens, "text": result.text,
            "stop_reason": result.stopReason.description, "trace": trace, "probes": result.probes,
            "schedule": guardFlags.options.schedule.description, "seconds": seconds,
            "threshold": GuardCalibration.decimal(decoder.threshold),
        ]
        if let at = result.refusalAt { object["refusal_at"] = at }
        try printJSON(object)
    }

    func run() throws { try CommandFailure.guarding { try execute() } }

    /// The command's work; a thrown error becomes one `error:` line and exit status 2.
    private func execute() throws {
        let loaded = try ModelBundle.load(path: model)
        guard let tokenizer = loaded.tokenizer else {
            throw ValidationError("\(model): no tokenizer.json; generate needs one")
        }
        var render = { (prompt: String) in prompt }
        var stopTokens: Set<Int> = []
        // A checkpoint answers as it was trained to only behind its training template; a
        // model that ships its own chat template answers behind that one.
        let stored = loaded.checkpoint.chatTemplate == nil ? nil : "auto"
        if let template = template ?? loaded.checkpoint.provenance?.regime?.template ?? stored, template.lowercased() != "none" {
            let chat = try ChatTemplate.named(template, tokenizer: tokenizer)
            render = { chat.prompt($0) }
            if let end = tokenizer.id(of: chat.endOfTurn) { stopTokens.insert(end) }
        }
        let options = GenerationOptions(
            maxTokens: maxTokens, sampler: Sampler(temperature: temperature, topK: topK, topP: topP), seed: seed,
            stopTokens: stopTokens, stopStrings: stopStrings)
        // The token that ends the answer is not part of it.
        let ends = stopTokens.union([tokenizer.eosTokenId].compactMap { $0 })
        // A calibrated guard is part of how the checkpoint is meant to answer.
        let guarding = guarded ?? (loaded.checkpoint.signal.map(SafetySignal.isCalibrated) ?? false)
        if let prompts, let output {
            return try answerFile(prompts, into: output, loaded: loaded, tokenizer: tokenizer, render: render, options: options,
                                  ends: ends, guarding: guarding)
        }
        let text = render(prompt ?? "")
        if guarding {
            return try runGuarded(loaded, tokenizer: tokenizer, text: text, options: options, ends: ends)
        }
        let promptIds = tokenizer.encode(text)
        let generator = Generator(model: loaded.model, tokenizer: tokenizer)
        if json {
            let start = Date()
            let result = try generator.generate(prompt: promptIds, options: options)
            let object: [String: Any] = [
                "prompt": text, "prompt_tokens": promptIds, "tokens": result.tokens,
                "text": result.text ?? "", "stop_reason": result.stopReason.description,
                "seconds": Date().timeIntervalSince(start),
            ]
            try printJSON(object)
        } else {
            let result = try generator.generate(prompt: promptIds, options: options) { step in
                if !ends.contains(step.token), let delta = step.textDelta, !delta.isEmpty {
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

extension GenerateCommand {
    /// Answers every record of the JSONL file `path` and writes them, each with its
    /// `completion`, to `output` (atomically: a failed run leaves no partial file).
    private func answerFile(_ path: String, into output: String, loaded: ModelBundle, tokenizer: Tokenizer,
                            render: (String) -> String, options: GenerationOptions, ends: Set<Int>, guarding: Bool) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure.report("\(path): cannot be read") }
        var records: [[(String, JSONValue)]] = [], ids: [[Int]] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { continue }
            let value: JSONValue
            do { value = try JSONParser.parse(Data(line)) } catch {
                throw CommandFailure.report("\(path):\(n + 1): not JSON (\(error.reason))")
            }
            guard case let .object(pairs) = value, case let .string(text)? = value["prompt"] else {
                throw CommandFailure.report("\(path):\(n + 1): a record needs a \"prompt\" string")
            }
            records.append(pairs.filter { $0.0 != "completion" })
            ids.append(tokenizer.encode(render(text)))
        }
        let start = Date()
        let all = Array(repeating: options, count: ids.count)
        let answers: [(tokens: [Int], text: String)]
        if guarding {
            let decoder = try Self.guardedDecoder(loaded, tokenizer: tokenizer, flags: guardFlags, source: model)
            answers = try decoder.generate(prompts: ids, options: all, batch: batch).map { ($0.tokens, $0.text) }
        } else {
            answers = try Generator(model: loaded.model, tokenizer: tokenizer).generate(prompts: ids, options: all, batch: batch)
                .map { ($0.tokens, $0.text ?? "") }
        }
        var out = ""
        for (record, answer) in zip(records, answers) {
            // The token that ends the answer is not part of it.
            let text = answer.tokens.last.map(ends.contains) == true ? tokenizer.decode(Array(answer.tokens.dropLast())) : answer.text
            out += JSONValue.object(record + [("completion", .string(text))]).line + "\n"
        }
        do { try Data(out.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
            throw CommandFailure.report("\(output): cannot be written (\(error.localizedDescription))")
        }
        let seconds = Date().timeIntervalSince(start)
        let tokens = answers.reduce(0) { $0 + $1.tokens.count }
        if json {
            try printJSON(["prompts": ids.count, "output": output, "tokens": tokens, "seconds": seconds, "guarded": guarding])
        } else {
            FileHandle.standardError.write(Data(String(format: "%d prompts answered into %@: %d tokens in %.1f s (%.0f tokens/s)\n",
                                                       ids.count, output, tokens, seconds, Double(tokens) / max(seconds, 1e-9)).utf8))
        }
    }
}

/// Writes `object` as one line of JSON with sorted keys.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}

/// Writes `value` as one line of JSON with sorted keys.
func printJSON<T: Encodable>(encoding value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
