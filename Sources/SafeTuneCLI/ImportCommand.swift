import ArgumentParser
import Checkpoints
import Foundation

/// `safetune import hf DIR -o CKPT`: a Hugging Face model folder becomes a SafeTune checkpoint.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert models from other formats into SafeTune checkpoints.",
        subcommands: [HF.self]
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
}
