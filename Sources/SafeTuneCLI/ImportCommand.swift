import ArgumentParser
import Checkpoints
import Foundation
import Models

/// `safetune import hf DIR -o CKPT` and `safetune import gguf FILE -o CKPT`: a Hugging
/// Face model folder or a llama.cpp GGUF file becomes a SafeTune checkpoint.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert models from other formats into SafeTune checkpoints.",
        subcommands: [HF.self, GGUF.self]
    )

    /// `safetune import hf`: config.json + model.safetensors (or shards) + tokenizer.json → checkpoint.
    struct HF: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hf",
            abstract: "Import a Hugging Face folder (config.json, model.safetensors or shards, tokenizer.json).",
            discussion: "Every tensor is checked against the config before the checkpoint is written atomically. "
                + "Exit status: 0 written, 2 error (one line on standard error).")

        @Argument(help: "The Hugging Face model folder.")
        var folder: String

        @Option(name: .shortAndLong, help: "The checkpoint file to write.")
        var output: String

        @Flag(help: "Print a JSON summary.")
        var json = false

        func run() throws {
            let checkpoint = try CommandFailure.guarding { () throws -> Checkpoint in
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                    throw CheckpointError.io(file: folder, reason: "no such folder")
                }
                let checkpoint = try HuggingFaceModel.importModel(from: URL(fileURLWithPath: folder))
                try checkpoint.write(to: URL(fileURLWithPath: output))
                return checkpoint
            }
            let parameters = checkpoint.weights.values.reduce(0) { $0 + $1.count }
            let type = HuggingFaceModel.modelType(checkpoint.config)
            if json {
                try printJSON(["output": output, "model_type": type, "parameters": parameters,
                               "tensors": checkpoint.weights.count, "tokenizer": checkpoint.tokenizerJSON != nil])
            } else {
                let tokenizer = checkpoint.tokenizerJSON == nil ? "no tokenizer" : "with tokenizer"
                print("wrote \(output): \(type), \(checkpoint.weights.count) tensors, \(parameters) parameters, \(tokenizer)")
            }
        }
    }

    /// `safetune import gguf`: a GGUF file (llama or qwen2) → checkpoint.
    struct GGUF: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gguf",
            abstract: "Import a GGUF file (llama.cpp's format): weights dequantised to float32, tokenizer, chat template.",
            discussion: "Reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K tensors of a llama or qwen2 "
                + "model. The file's SHA-256 is recorded in the checkpoint's provenance. "
                + "Exit status: 0 written, 2 error (one line on standard error).")

        @Argument(help: "The .gguf file.")
        var file: String

        @Option(name: .shortAndLong, help: "The checkpoint file to write.")
        var output: String

        @Flag(help: "Print a JSON summary.")
        var json = false

        func run() throws {
            let start = Date()
            let checkpoint = try CommandFailure.guarding { () throws -> Checkpoint in
                let checkpoint = try GGUFModel.importModel(from: URL(fileURLWithPath: file))
                try checkpoint.write(to: URL(fileURLWithPath: output))
                return checkpoint
            }
            let seconds = Date().timeIntervalSince(start)
            let parameters = checkpoint.weights.values.reduce(0) { $0 + $1.count }
            let type = HuggingFaceModel.modelType(checkpoint.config)
            let template = try? checkpoint.chatTemplate.map { try ChatTemplate(jinja: $0) }
            let templateName = checkpoint.chatTemplate == nil ? "none" : template.map { $0.style.rawValue } ?? "not recognised"
            if json {
                try printJSON(["output": output, "model_type": type, "parameters": parameters, "tensors": checkpoint.weights.count,
                               "layers": checkpoint.config.numLayers, "chat_template": templateName,
                               "source_sha256": checkpoint.provenance?.source?.sha256 ?? "", "seconds": seconds])
            } else {
                if checkpoint.chatTemplate != nil, template == nil {
                    FileHandle.standardError.write(Data("warning: \(file): the chat template is not one SafeTune recognises; pass --template to commands that format prompts\n".utf8))
                }
                print("wrote \(output): \(type), \(checkpoint.config.numLayers) layers, \(parameters) parameters, "
                      + "chat template \(templateName), in \(String(format: "%.1f", seconds)) s")
            }
        }
    }
}
