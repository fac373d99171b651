import ArgumentParser
import Checkpoints
import Foundation

/// `safetune export hf|peft CKPT -o DIR`: a SafeTune checkpoint as files other tools load.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a checkpoint as a Hugging Face model folder or its adapters as a PEFT folder.",
        subcommands: [HF.self, PEFT.self]
    )

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
}
