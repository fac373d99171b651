import Engine
import Foundation
import Models

/// Import from and export to a Hugging Face model folder (`config.json`,
/// `model.safetensors` or its shards, `tokenizer.json`). Names and layouts are the same on
/// both sides, so import and export copy tensors without renaming or transposing.
public enum HuggingFaceModel {
    /// Reads a Hugging Face folder into a checkpoint, validating every tensor name and
    /// shape against the config.
    ///
    /// Tolerated differences from SafeTune's names: old GPT-2 files without the
    /// `transformer.` prefix, non-parameter buffers (`attn.bias`, `attn.masked_bias`,
    /// `rotary_emb.inv_freq`), and a stored `lm_head.weight` on a tied model (dropped).
    public static func importModel(from directory: URL) throws(CheckpointError) -> Checkpoint {
        let configURL = directory.appendingPathComponent("config.json")
        let config: ModelConfig
        do {
            config = try ModelConfig.huggingFace(contentsOf: configURL)
        } catch {
            throw .invalidConfig(file: configURL.path, reason: error.description)
        }
        let raw: [String: Tensor]
        do {
            raw = try SafetensorsModel.load(from: directory)
        } catch {
            throw .safetensors(error)
        }
        let layout = ParameterLayout(config: config)
        var weights: [String: Tensor] = [:]
        for (name, tensor) in raw {
            if name.hasSuffix(".attn.bias") && layout.shape(of: name) == nil { continue }
            if name.hasSuffix(".attn.masked_bias") || name.hasSuffix("rotary_emb.inv_freq") { continue }
            if name == "lm_head.weight" && config.tieWordEmbeddings { continue }
            var key = name
            if config.family == .gpt2 && !name.hasPrefix("transformer.") && name != "lm_head.weight" { key = "transformer." + name }
            weights[key] = tensor
        }
        let source = directory.appendingPathComponent(SafetensorsModel.singleFile).path
        try layout.validate(shapes: weights.mapValues(\.shape), file: source, prefix: "")
        for (name, t) in weights {
            let p = t.data
            for i in 0..<t.count where !p[i].isFinite { throw .nonFinite(file: source, dataset: name, index: i) }
        }
        let tokenizerURL = directory.appendingPathComponent("tokenizer.json")
        var tokenizer: Data? = nil
        if FileManager.default.fileExists(atPath: tokenizerURL.path) {
            do { tokenizer = try Data(contentsOf: tokenizerURL) } catch { throw .io(file: tokenizerURL.path, reason: "cannot read") }
        }
        return Checkpoint(config: config, weights: weights, tokenizerJSON: tokenizer)
    }

    /// Writes `checkpoint` as a transformers-loadable folder: `config.json`,
    /// `model.safetensors` and, when present, `tokenizer.json`.
    public static func export(_ checkpoint: Checkpoint, to directory: URL) throws(CheckpointError) {
        guard !checkpoint.isAdapterOnly else {
            throw .invalidConfig(file: directory.path, reason: "an adapter-only checkpoint has no weights to export; attach it to its base first")
        }
        let layout = ParameterLayout(config: checkpoint.config)
        try layout.validate(shapes: checkpoint.weights.mapValues(\.shape), file: directory.path, prefix: "")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw .io(file: directory.path, reason: "cannot create folder")
        }
        try writeJSON(configJSON(checkpoint.config), to: directory.appendingPathComponent("config.json"))
        do {
            try SafetensorsWriter.write(checkpoint.weights, to: directory.appendingPathComponent(SafetensorsModel.singleFile))
        } catch {
            throw .safetensors(error)
        }
        if let tok = checkpoint.tokenizerJSON {
            let url = directory.appendingPathComponent("tokenizer.json")
            do { try AtomicFile.write(to: url) { try tok.write(to: $0) } } catch { throw .io(file: url.path, reason: "cannot write") }
        }
    }

    /// The `model_type` written for `config`: Qwen2 is the Llama family with q/k/v bias
    /// but no output bias; everything else of that family is written as Llama.
    public static func modelType(_ config: ModelConfig) -> String {
        switch config.family {
        case .gpt2: return "gpt2"
        case .llama: return config.qkvBias && !config.outputBias && !config.mlpBias ? "qwen2" : "llama"
        }
    }

    /// A `config.json` object that transformers (4.x and 5.x) loads as the same architecture.
    public static func configJSON(_ c: ModelConfig) -> [String: Any] {
        var json: [String: Any] = ["vocab_size": c.vocabSize, "tie_word_embeddings": c.tieWordEmbeddings, "dtype": "float32"]
        if let bos = c.bosTokenId { json["bos_token_id"] = bos }
        if let eos = c.eosTokenId { json["eos_token_id"] = eos }
        let type = modelType(c)
        json["model_type"] = type
        switch type {
        case "gpt2":
            json["architectures"] = ["GPT2LMHeadModel"]
            json["n_embd"] = c.hiddenSize
            json["n_layer"] = c.numLayers
            json["n_head"] = c.numHeads
            json["n_inner"] = c.intermediateSize
            json["n_positions"] = c.maxPositions
            json["n_ctx"] = c.maxPositions
            json["layer_norm_epsilon"] = decimal(c.normEps)
            json["activation_function"] = "gelu_new"
        default:
            json["architectures"] = [type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"]
            json["hidden_size"] = c.hiddenSize
            json["intermediate_size"] = c.intermediateSize
            json["num_hidden_layers"] = c.numLayers
            json["num_attention_heads"] = c.numHeads
            json["num_key_value_heads"] = c.numKVHeads
            json["head_dim"] = c.headDim
            json["max_position_embeddings"] = c.maxPositions
            json["rms_norm_eps"] = decimal(c.normEps)
            json["hidden_act"] = "silu"
            // Older transformers read the top-level key, version 5 the rope_parameters object.
            json["rope_theta"] = decimal(c.ropeTheta)
            json["rope_parameters"] = ["rope_type": "default", "rope_theta": decimal(c.ropeTheta)]
            if type == "qwen2" {
                json["use_sliding_window"] = false
            } else {
                json["attention_bias"] = c.qkvBias
                json["mlp_bias"] = c.mlpBias
            }
        }
        return json
    }

    /// The shortest decimal that reads back as `value` (1e-05, not 9.99999974738e-06), so
    /// the exported config matches the one that was imported.
    static func decimal(_ value: Float) -> Double { Double(value.description) ?? Double(value) }

    static func writeJSON(_ object: Any, to url: URL) throws(CheckpointError) {
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(to: url) { try data.write(to: $0) }
        } catch {
            throw .io(file: url.path, reason: "cannot write JSON: \(error)")
        }
    }
}
