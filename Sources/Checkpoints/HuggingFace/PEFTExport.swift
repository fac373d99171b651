import Engine
import Foundation
import Models

/// Writes a checkpoint's LoRA adapters as a PEFT folder (`adapter_model.safetensors` and
/// `adapter_config.json`) that `PeftModel.from_pretrained` loads onto the exported base.
///
/// Each `/adapters/<module>` group holds `A` `[rank, in]` and `B` `[out, rank]` with
/// attributes `rank`, `alpha` and `target`; they become
/// `base_model.model.<module>.lora_A.weight` and `.lora_B.weight`.
public enum PEFTExport {
    /// Exports `adapters` for a model of `config`; `baseModel` fills `base_model_name_or_path`.
    public static func export(adapters: TensorGroup, config: ModelConfig, baseModel: String = "",
                              to directory: URL) throws(CheckpointError) {
        let file = directory.appendingPathComponent("adapter_model.safetensors").path
        let layout = ParameterLayout(config: config)
        guard !adapters.groups.isEmpty else { throw .missingDataset(file: file, dataset: "/adapters/*") }
        var tensors: [String: Tensor] = [:]
        var ranks = Set<Int64>(), alphas = Set<Double>(), targets = Set<String>()
        for (module, group) in adapters.groups.sorted(by: { $0.key < $1.key }) {
            let object = "/adapters/\(module)"
            guard let linear = layout.linearModule(named: module) else { throw .unexpectedDataset(file: file, dataset: object) }
            guard let rank = group.attributes["rank"]?.intValue, rank > 0 else {
                throw .missingAttribute(file: file, object: object, attribute: "rank")
            }
            guard let alpha = group.attributes["alpha"]?.doubleValue else {
                throw .missingAttribute(file: file, object: object, attribute: "alpha")
            }
            guard let a = group.tensors["A"] else { throw .missingDataset(file: file, dataset: "\(object)/A") }
            guard let b = group.tensors["B"] else { throw .missingDataset(file: file, dataset: "\(object)/B") }
            let r = Int(rank)
            if a.shape != [r, linear.inFeatures] {
                throw .shapeMismatch(file: file, dataset: "\(object)/A", expected: [r, linear.inFeatures], found: a.shape)
            }
            if b.shape != [linear.outFeatures, r] {
                throw .shapeMismatch(file: file, dataset: "\(object)/B", expected: [linear.outFeatures, r], found: b.shape)
            }
            tensors["base_model.model.\(module).lora_A.weight"] = a
            tensors["base_model.model.\(module).lora_B.weight"] = b
            ranks.insert(rank)
            alphas.insert(alpha)
            targets.insert(linear.target)
        }
        // PEFT's config has one rank and alpha for all modules (the patterns exist, but
        // SafeTune trains with one setting), so mixed settings are refused.
        guard ranks.count == 1, let rank = ranks.first else {
            throw .invalidAttribute(file: file, object: "/adapters", attribute: "rank", reason: "differs between modules: \(ranks.sorted())")
        }
        guard alphas.count == 1, let alpha = alphas.first else {
            throw .invalidAttribute(file: file, object: "/adapters", attribute: "alpha", reason: "differs between modules: \(alphas.sorted())")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw .io(file: directory.path, reason: "cannot create folder")
        }
        do {
            try SafetensorsWriter.write(tensors, to: URL(fileURLWithPath: file))
        } catch {
            throw .safetensors(error)
        }
        let json: [String: Any] = [
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": baseModel,
            "r": rank,
            "lora_alpha": alpha,
            "lora_dropout": 0.0,
            "bias": "none",
            "target_modules": targets.sorted(),
            "fan_in_fan_out": config.family == .gpt2,
            "inference_mode": true,
            "init_lora_weights": true,
            "use_rslora": false,
            "use_dora": false,
        ]
        try HuggingFaceModel.writeJSON(json, to: directory.appendingPathComponent("adapter_config.json"))
    }
}
