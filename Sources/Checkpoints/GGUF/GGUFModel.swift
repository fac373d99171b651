import Engine
import Foundation
import Models

/// Import from and export to GGUF, llama.cpp's model file: the architecture, weights,
/// tokenizer and chat template of a Llama- or Qwen2-architecture model.
///
/// Names: GGUF's `blk.N.attn_q.weight` is Hugging Face's
/// `model.layers.N.self_attn.q_proj.weight`, and so on (`tensorNames`). Shapes: a GGUF
/// tensor's dims are the reversed row-major shape, so no data moves. Rows of `attn_q`
/// and `attn_k`: llama.cpp's converter permutes them for a `llama` file (its rotary
/// embedding rotates adjacent pairs, Hugging Face's rotates the two halves of a head);
/// import undoes that permutation and export applies it, so a checkpoint always holds
/// Hugging Face's order. `qwen2` files are not permuted.
public enum GGUFModel {
    /// Architectures SafeTune imports (`general.architecture`).
    public static let architectures = ["llama", "qwen2"]

    /// GGUF tensor name → Hugging Face name, for one block's tensors (`blk.N.` + key).
    static let blockNames: [String: String] = [
        "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    ]

    /// The Hugging Face name of a GGUF tensor, or nil for a name SafeTune does not know.
    public static func huggingFaceName(_ name: String) -> String? {
        switch name {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        default:
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
                  let module = blockNames[String(parts[2])], parts[3] == "weight" || parts[3] == "bias" else { return nil }
            return "model.layers.\(layer).\(module).\(parts[3])"
        }
    }

    /// The GGUF name of a Hugging Face tensor (the inverse of `huggingFaceName`).
    public static func ggufName(_ name: String) -> String? {
        switch name {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default:
            let prefix = "model.layers."
            guard name.hasPrefix(prefix) else { return nil }
            let rest = name.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
            let tail = rest[rest.index(after: dot)...]
            for (gguf, hf) in blockNames {
                for kind in ["weight", "bias"] where tail == "\(hf).\(kind)" { return "blk.\(layer).\(gguf).\(kind)" }
            }
            return nil
        }
    }

    /// Reads a GGUF file into a checkpoint: configuration from the metadata, every tensor
    /// dequantised to float32 and checked against the configuration, the tokenizer as
    /// `tokenizer.json`, the chat template as text, and the file's SHA-256 in the
    /// provenance (with the package that ships it, when it is a pinned base model).
    public static func importModel(from url: URL) throws(GGUFError) -> Checkpoint {
        let file = try GGUFFile(contentsOf: url)
        let path = file.path
        let config = try configuration(file)
        let arch = try file.string("general.architecture") ?? ""
        let permuted = permutesQK(architecture: arch)
        let layout = ParameterLayout(config: config)
        var weights: [String: Tensor] = [:]
        for info in file.tensors {
            guard let name = huggingFaceName(info.name) else {
                throw .tensor(file: path, tensor: info.name, reason: "is not part of a \(arch) model SafeTune knows")
            }
            guard let expected = layout.shape(of: name) else {
                throw .tensor(file: path, tensor: info.name, reason: "is not part of this configuration (\(name))")
            }
            guard info.shape == expected else {
                throw .tensor(file: path, tensor: info.name, reason: "shape \(info.shape) disagrees with the metadata, expected \(expected)")
            }
            // llama.cpp's q/k row order is undone while decoding, so no tensor is held twice.
            let heads = permuted ? rotaryHeads(name, config) : nil
            let tensor = file.floats(info, rowOrder: heads.map { h in { huggingFaceRow(ofGGUFRow: $0, rows: info.shape[0], heads: h) } })
            let p = tensor.data
            for i in 0..<tensor.count where !p[i].isFinite {
                throw .tensor(file: path, tensor: info.name, reason: "non-finite value (NaN or Inf) at element \(i)")
            }
            weights[name] = tensor
        }
        for name in layout.parameters.map(\.name) where weights[name] == nil {
            throw .tensor(file: path, tensor: ggufName(name) ?? name, reason: "is missing")
        }
        let tokenizer = try GGUFTokenizer.tokenizerJSON(file, vocabSize: config.vocabSize)
        let sha = TensorDigest.sha256(bytes: file.rawBytes)
        let known = BaseModel.all.first { $0.sha256 == sha }
        var provenance = Provenance()
        provenance.source = ImportSource(file: url.lastPathComponent, sha256: sha, package: known?.package, packageVersion: known?.version)
        return Checkpoint(config: config, weights: weights, tokenizerJSON: tokenizer,
                          chatTemplate: try file.string("tokenizer.chat_template"), provenance: provenance)
    }

    /// The model configuration from `general.architecture` and `<arch>.*` metadata.
    public static func configuration(_ file: GGUFFile) throws(GGUFError) -> ModelConfig {
        let path = file.path
        guard let arch = try file.string("general.architecture") else {
            throw .metadata(file: path, key: "general.architecture", reason: "is missing")
        }
        guard architectures.contains(arch) else {
            throw .unsupported(file: path, reason: "architecture '\(arch)'; SafeTune imports \(architectures.joined(separator: " and "))")
        }
        func required(_ key: String) throws(GGUFError) -> Int {
            guard let v = try file.int("\(arch).\(key)") else { throw .metadata(file: path, key: "\(arch).\(key)", reason: "is missing") }
            return v
        }
        let hidden = try required("embedding_length")
        let heads = try required("attention.head_count")
        if let scaling = try file.string("\(arch).rope.scaling.type"), scaling != "none" {
            throw .unsupported(file: path, reason: "RoPE scaling '\(scaling)' (\(arch).rope.scaling.type)")
        }
        if heads > 0, hidden % heads == 0 {
            for key in ["rope.dimension_count", "attention.key_length", "attention.value_length"] {
                if let v = try file.int("\(arch).\(key)"), v != hidden / heads {
                    throw .unsupported(file: path, reason: "\(arch).\(key) \(v) differs from embedding_length / head_count = \(hidden / heads)")
                }
            }
        }
        guard let embedding = file.tensor(named: "token_embd.weight"), embedding.dims.count == 2 else {
            throw .tensor(file: path, tensor: "token_embd.weight", reason: "is missing or not two-dimensional")
        }
        let has = { (name: String) in file.tensor(named: name) != nil }
        let config = ModelConfig(
            family: .llama, vocabSize: embedding.dims[1], hiddenSize: hidden, numLayers: try required("block_count"),
            numHeads: heads, numKVHeads: try file.int("\(arch).attention.head_count_kv") ?? heads,
            intermediateSize: try required("feed_forward_length"), maxPositions: try required("context_length"),
            normEps: Float(try file.double("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5),
            ropeTheta: Float(try file.double("\(arch).rope.freq_base") ?? 10_000),
            tieWordEmbeddings: !has("output.weight"), qkvBias: has("blk.0.attn_q.bias"),
            outputBias: has("blk.0.attn_output.bias"), mlpBias: has("blk.0.ffn_gate.bias"),
            bosTokenId: try file.int("tokenizer.ggml.bos_token_id"), eosTokenId: try file.int("tokenizer.ggml.eos_token_id"))
        do { try config.validate() } catch { throw .metadata(file: path, key: "\(arch).*", reason: error.description) }
        return config
    }

    /// Whether a file of this architecture holds q and k rows in llama.cpp's permuted order.
    static func permutesQK(architecture: String) -> Bool { architecture == "llama" }

    /// The head count of a q or k projection (weight or bias), nil for other tensors.
    static func rotaryHeads(_ name: String, _ config: ModelConfig) -> Int? {
        if name.contains(".self_attn.q_proj.") { return config.numHeads }
        if name.contains(".self_attn.k_proj.") { return config.numKVHeads }
        return nil
    }

    /// llama.cpp's q/k row order: within each head of `hd` rows, Hugging Face row
    /// `t·hd/2 + i` (half t, position i) is GGUF row `2i + t`.
    static func huggingFaceRow(ofGGUFRow row: Int, rows: Int, heads: Int) -> Int {
        let hd = rows / heads, h = row / hd, within = row % hd
        return h * hd + (within % 2) * (hd / 2) + within / 2
    }

    /// A q or k projection in llama.cpp's row order (for export).
    static func ggufRowOrder(_ t: Tensor, heads: Int) -> Tensor {
        let rows = t.shape[0], width = t.count / rows
        let out = Tensor(zeros: t.shape)
        for r in 0..<rows {
            (out.data + r * width).update(from: t.data + huggingFaceRow(ofGGUFRow: r, rows: rows, heads: heads) * width, count: width)
        }
        return out
    }
}
