import ArgumentParser
import Checkpoints
import Foundation

/// `safetune export hf|peft|gguf CKPT -o OUT`: a SafeTune checkpoint as files other tools
/// load; `safetune export adapters`: a small adapter-only checkpoint that names its base.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a checkpoint as a Hugging Face model folder, its adapters as a PEFT folder, or the model as a GGUF file.",
        subcommands: [HF.self, PEFT.self, GGUF.self, Adapters.self]
    )

    /// `safetune export adapters`: everything but the base's weights, checked to attach to the base.
    struct Adapters: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "adapters",
            abstract: "Write a checkpoint without its base's weights: adapters, added token rows, signal, unit map, directions, provenance.",
            discussion: "The file records the base's weights digest; loading it attaches the base again "
                + "(a pinned base such as smollm2 is found in the model cache) and refuses any other base. "
                + "Exit status: 0 written, 2 error (one line on standard error).")

        @Argument(help: "The checkpoint (.h5) trained from the base.")
        var checkpoint: String

        @Option(help: "The base it was trained from: smollm2, a .gguf file or a .h5 checkpoint.")
        var base: String

        @Option(name: .shortAndLong, help: "The adapter-only checkpoint to write.")
        var output: String

        func run() throws {
            try CommandFailure.guarding {
                let full = try Checkpoint.read(from: URL(fileURLWithPath: checkpoint))
                let baseURL = try ModelBundle.resolve(base)
                let parent = baseURL.pathExtension.lowercased() == "gguf" ? try GGUFModel.importModel(from: baseURL) : try Checkpoint.read(from: baseURL)
                let small = full.adapterOnly(baseVocabularySize: parent.config.vocabSize)
                // Refuse to write a file that would not attach to the named base.
                _ = try small.attaching(to: parent, source: checkpoint)
                try small.write(to: URL(fileURLWithPath: output))
                let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
                print("wrote \(output) (\(size / 1_000_000) MB), base weights \(small.baseSHA256 ?? "")")
            }
        }
    }

    /// `safetune export hf`: config.json + model.safetensors (+ tokenizer.json).
    struct HF: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hf",
            abstract: "Write the checkpoint's weights as a transformers-loadable folder.",
            discussion: "Adapters are not merged; export them with `safetune export peft`. "
                + "Exit status: 0 written, 2 error (one line on standard error).")

        @Argument(help: "The checkpoint (.h5).")
        var checkpoint: String

        @Option(name: .shortAndLong, help: "The folder to write (created if missing).")
        var output: String

        @Flag(help: "Print a JSON summary.")
        var json = false

        func run() throws {
            let c = try CommandFailure.guarding { () throws -> Checkpoint in
                let c = try Checkpoint.read(from: URL(fileURLWithPath: checkpoint))
                try HuggingFaceModel.export(c, to: URL(fileURLWithPath: output))
                return c
            }
            var files = ["config.json", "model.safetensors"]
            if c.tokenizerJSON != nil { files.append("tokenizer.json") }
            if json {
                try printJSON(["output": output, "model_type": HuggingFaceModel.modelType(c.config), "files": files])
            } else {
                print("wrote \(output): \(files.joined(separator: ", "))")
            }
        }
    }

    /// `safetune export peft`: the `/adapters` section as adapter_model.safetensors + adapter_config.json.
    struct PEFT: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "peft",
            abstract: "Write the checkpoint's LoRA adapters as a PEFT folder.",
            discussion: "Exit status: 0 written, 2 error (one line on standard error), e.g. when the checkpoint has no adapters.")

        @Argument(help: "The checkpoint (.h5) holding an /adapters section.")
        var checkpoint: String

        @Option(name: .shortAndLong, help: "The folder to write (created if missing).")
        var output: String

        @Option(help: "Value of base_model_name_or_path in adapter_config.json (the exported base's folder or hub name).")
        var baseModel = ""

        @Flag(help: "Print a JSON summary.")
        var json = false

        func run() throws {
            let modules = try CommandFailure.guarding { () throws -> Int in
                let c = try Checkpoint.read(from: URL(fileURLWithPath: checkpoint))
                guard let adapters = c.adapters, !adapters.groups.isEmpty else {
                    throw CommandFailure.report("\(checkpoint): no /adapters section: this checkpoint holds no LoRA adapters to export")
                }
                try PEFTExport.export(adapters: adapters, config: c.config, baseModel: baseModel, to: URL(fileURLWithPath: output))
                return adapters.groups.count
            }
            if json {
                try printJSON(["output": output, "modules": modules, "files": ["adapter_config.json", "adapter_model.safetensors"]])
            } else {
                print("wrote \(output): adapter_config.json, adapter_model.safetensors (\(modules) modules)")
            }
        }
    }

    /// `safetune export gguf`: the model, LoRA merged, as a GGUF file for llama.cpp and ollama.
    struct GGUF: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gguf",
            abstract: "Write the model, LoRA adapters merged, as a GGUF file (llama.cpp, ollama, transformers).",
            discussion: "Matrices are stored as --type (norms and biases as F32), with the tokenizer and chat template "
                + "in the metadata. Llama-family models only. Exit status: 0 written, 2 error (one line on standard error).")

        @Argument(help: "The checkpoint (.h5), a GGUF file or a Hugging Face folder.")
        var checkpoint: String

        @Option(name: .shortAndLong, help: "The .gguf file to write.")
        var output: String

        @Option(help: "Storage type of the matrices: F32, F16 or Q8_0.")
        var type = "F16"

        @Flag(help: "Print a JSON summary.")
        var json = false

        func run() throws {
            let (tensors, bytes) = try CommandFailure.guarding { () throws -> (Int, Int) in
                guard let stored = GGMLType.writable.first(where: { $0.name == type.uppercased() }) else {
                    throw CommandFailure.report("--type \(type): expected one of \(GGMLType.writable.map(\.name).joined(separator: ", "))")
                }
                let bundle = try ModelBundle.load(path: checkpoint)
                var merged = bundle.checkpoint
                merged.weights = bundle.model.huggingFaceWeights(sharing: true)
                let url = URL(fileURLWithPath: output)
                try GGUFModel.export(merged, to: url, type: stored)
                let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
                return (merged.weights.count, size)
            }
            if json {
                try printJSON(["output": output, "type": type.uppercased(), "tensors": tensors, "bytes": bytes])
            } else {
                print("wrote \(output): \(tensors) tensors, \(type.uppercased()), \(bytes / 1_000_000) MB")
            }
        }
    }
}
