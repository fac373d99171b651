import Foundation
import Tokenizers

/// The architecture of a decoder-only transformer, in the vocabulary of Hugging Face
/// `config.json` files. Both families share one block structure; the fields below
/// select the differences (norm, activation, positions, biases, tying).
public struct ModelConfig: Codable, Equatable, Sendable {
    /// Which family's block structure to use.
    public enum Family: String, Codable, Sendable {
        /// LayerNorm, GELU (tanh), learned positions, fused `c_attn`, Conv1D layout.
        case gpt2
        /// RMSNorm, SwiGLU, rotary positions, grouped-query attention (Llama, Qwen2, Mistral).
        case llama
    }

    public var family: Family
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    /// Key/value heads; equals `numHeads` without grouped-query attention.
    public var numKVHeads: Int
    public var intermediateSize: Int
    /// Longest sequence the model accepts (learned positions for GPT-2).
    public var maxPositions: Int
    public var normEps: Float
    /// Rotary base (Llama family only).
    public var ropeTheta: Float
    public var tieWordEmbeddings: Bool
    /// Bias on the q/k/v projections (GPT-2, Qwen2, Llama with `attention_bias`).
    public var qkvBias: Bool
    /// Bias on the attention output projection (GPT-2 `c_proj`, Llama `o_proj` with `attention_bias`; not Qwen2).
    public var outputBias: Bool
    /// Bias on the MLP projections (GPT-2, Llama with `mlp_bias`).
    public var mlpBias: Bool
    public var bosTokenId: Int?
    public var eosTokenId: Int?

    public init(family: Family, vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int,
                numKVHeads: Int? = nil, intermediateSize: Int? = nil, maxPositions: Int = 1024,
                normEps: Float = 1e-5, ropeTheta: Float = 10_000, tieWordEmbeddings: Bool? = nil,
                qkvBias: Bool? = nil, outputBias: Bool? = nil, mlpBias: Bool? = nil, bosTokenId: Int? = nil, eosTokenId: Int? = nil) {
        self.family = family
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads ?? numHeads
        self.intermediateSize = intermediateSize ?? (family == .gpt2 ? 4 * hiddenSize : 4 * hiddenSize)
        self.maxPositions = maxPositions
        self.normEps = normEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings ?? (family == .gpt2)
        self.qkvBias = qkvBias ?? (family == .gpt2)
        self.outputBias = outputBias ?? (family == .gpt2)
        self.mlpBias = mlpBias ?? (family == .gpt2)
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
    }

    /// Size of one attention head.
    public var headDim: Int { hiddenSize / numHeads }

    /// Checks the numbers are consistent and within `limits`, before anything is allocated.
    public func validate(limits: ModelLimits = .init()) throws(ModelConfigError) {
        func check(_ ok: Bool, _ key: String, _ why: String) throws(ModelConfigError) {
            if !ok { throw .invalid(key: key, reason: why) }
        }
        try check(vocabSize > 0 && vocabSize <= limits.maxVocab, "vocab_size", "\(vocabSize) is outside 1...\(limits.maxVocab)")
        try check(hiddenSize > 0 && hiddenSize <= limits.maxHidden, "hidden_size", "\(hiddenSize) is outside 1...\(limits.maxHidden)")
        try check(numLayers > 0 && numLayers <= limits.maxLayers, "num_hidden_layers", "\(numLayers) is outside 1...\(limits.maxLayers)")
        try check(numHeads > 0 && hiddenSize % numHeads == 0, "num_attention_heads", "\(numHeads) does not divide hidden_size \(hiddenSize)")
        try check(numKVHeads > 0 && numHeads % numKVHeads == 0, "num_key_value_heads", "\(numKVHeads) does not divide num_attention_heads \(numHeads)")
        try check(intermediateSize > 0 && intermediateSize <= limits.maxHidden * 16, "intermediate_size", "\(intermediateSize) is out of range")
        try check(maxPositions > 0 && maxPositions <= limits.maxPositions, "max_position_embeddings", "\(maxPositions) is outside 1...\(limits.maxPositions)")
        try check(family == .gpt2 || headDim % 2 == 0, "head_dim", "rotary embeddings need an even head size, got \(headDim)")
        try check(normEps > 0 && normEps.isFinite, "norm_eps", "must be positive")
        try check(ropeTheta > 0 && ropeTheta.isFinite, "rope_theta", "must be positive")
    }
}

/// Upper bounds applied to configurations read from files, so a hostile file gets an
/// error instead of an out-of-memory kill.
public struct ModelLimits: Sendable {
    public var maxVocab = 1 << 20
    public var maxHidden = 16_384
    public var maxLayers = 256
    public var maxPositions = 1 << 17
    public init() {}
}

/// A configuration that cannot describe a model SafeTune can run.
public enum ModelConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case missingKey(file: String, key: String)
    case unsupported(file: String, modelType: String)
    case invalid(key: String, reason: String)

    /// One line, whatever the file put in its values (line breaks come out escaped).
    public var description: String { text.oneLine }

    private var text: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read model config: \(reason)"
        case let .missingKey(file, key): return "\(file): missing key '\(key)'"
        case let .unsupported(file, type): return "\(file): model_type '\(type)' is not supported (gpt2, llama, qwen2, mistral)"
        case let .invalid(key, reason): return "model config: '\(key)' \(reason)"
        }
    }
}

extension ModelConfig {
    /// Reads a Hugging Face `config.json` (GPT-2, Llama, Qwen2, Mistral). Accepts both
    /// the older top-level `rope_theta` and the newer `rope_parameters.rope_theta`.
    public static func huggingFace(contentsOf url: URL) throws(ModelConfigError) -> ModelConfig {
        let file = url.path
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        } catch {
            throw .unreadable(file: file, reason: error.localizedDescription)
        }
        guard let json = object as? [String: Any] else { throw .unreadable(file: file, reason: "not a JSON object") }
        return try huggingFace(json: json, file: file)
    }

    /// Parses an already decoded `config.json` object; `file` names it in errors.
    public static func huggingFace(json: [String: Any], file: String) throws(ModelConfigError) -> ModelConfig {
        func int(_ keys: String...) throws(ModelConfigError) -> Int {
            for k in keys { if let v = json[k] as? NSNumber { return v.intValue } }
            throw .missingKey(file: file, key: keys[0])
        }
        func optInt(_ k: String) -> Int? {
            if let v = json[k] as? NSNumber { return v.intValue }
            if let a = json[k] as? [NSNumber] { return a.first?.intValue }
            return nil
        }
        func float(_ k: String) -> Float? { (json[k] as? NSNumber)?.floatValue }
        func bool(_ k: String) -> Bool? { (json[k] as? NSNumber)?.boolValue }
        let type = (json["model_type"] as? String) ?? ""
        let config: ModelConfig
        switch type {
        case "gpt2":
            let d = try int("n_embd", "hidden_size")
            // 4 * d must not trap on a hostile n_embd; validate() rejects such a d anyway.
            config = ModelConfig(
                family: .gpt2, vocabSize: try int("vocab_size"), hiddenSize: d,
                numLayers: try int("n_layer", "num_hidden_layers"), numHeads: try int("n_head", "num_attention_heads"),
                intermediateSize: optInt("n_inner") ?? d.multipliedReportingOverflow(by: 4).partialValue, maxPositions: try int("n_positions", "max_position_embeddings"),
                normEps: float("layer_norm_epsilon") ?? 1e-5, tieWordEmbeddings: bool("tie_word_embeddings") ?? true,
                qkvBias: true, outputBias: true, mlpBias: true, bosTokenId: optInt("bos_token_id"), eosTokenId: optInt("eos_token_id"))
        case "llama", "qwen2", "mistral":
            let ropeParams = json["rope_parameters"] as? [String: Any]
            let theta = (ropeParams?["rope_theta"] as? NSNumber)?.floatValue ?? float("rope_theta") ?? 10_000
            if let scaling = (ropeParams?["rope_type"] ?? (json["rope_scaling"] as? [String: Any])?["rope_type"]) as? String,
               scaling != "default" {
                throw .invalid(key: "rope_scaling", reason: "rope type '\(scaling)' is not supported (only default rotary embeddings)")
            }
            let heads = try int("num_attention_heads")
            // Overflow-checked: both numbers come from the file.
            if let hd = optInt("head_dim"), hd.multipliedReportingOverflow(by: heads) != (try int("hidden_size"), false) {
                throw .invalid(key: "head_dim", reason: "\(hd) × \(heads) heads differs from hidden_size; not supported")
            }
            config = ModelConfig(
                family: .llama, vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
                numLayers: try int("num_hidden_layers"), numHeads: heads,
                numKVHeads: optInt("num_key_value_heads") ?? heads, intermediateSize: try int("intermediate_size"),
                maxPositions: try int("max_position_embeddings"), normEps: float("rms_norm_eps") ?? 1e-6,
                ropeTheta: theta, tieWordEmbeddings: bool("tie_word_embeddings") ?? false,
                qkvBias: type == "qwen2" || bool("attention_bias") == true,
                outputBias: type != "qwen2" && bool("attention_bias") == true, mlpBias: bool("mlp_bias") ?? false,
                bosTokenId: optInt("bos_token_id"), eosTokenId: optInt("eos_token_id"))
        default:
            throw .unsupported(file: file, modelType: type.isEmpty ? "(none)" : type)
        }
        try config.validate()
        return config
    }
}
