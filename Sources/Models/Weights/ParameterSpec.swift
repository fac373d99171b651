/// The parameters a configuration implies, in Hugging Face names, in the order they are
/// laid out in the model's parameter arena.
///
/// `shape` is SafeTune's layout (`[out, in]` for every projection); `storedTransposed`
/// marks GPT-2 Conv1D weights, whose Hugging Face layout is `[in, out]`.
public struct ParameterSpec: Equatable, Sendable {
    /// How a fresh model initialises the parameter.
    public enum Initialization: Equatable, Sendable {
        /// Normal with mean 0 and this standard deviation.
        case normal(std: Float)
        /// All zeros (biases).
        case zeros
        /// All ones (norm weights).
        case ones
    }

    /// Hugging Face parameter name.
    public let name: String
    /// Shape in SafeTune's layout.
    public let shape: [Int]
    /// Whether the Hugging Face file stores the transpose (`[in, out]`).
    public let storedTransposed: Bool
    /// Fresh-model initialisation.
    public let initialization: Initialization

    /// The shape as stored in Hugging Face files.
    public var huggingFaceShape: [Int] { storedTransposed ? [shape[1], shape[0]] : shape }

    /// Every parameter of `config`. Tied LM heads are not listed (they share the token table).
    public static func all(for config: ModelConfig) -> [ParameterSpec] {
        let d = config.hiddenSize, f = config.intermediateSize, v = config.vocabSize
        let kvWidth = config.numKVHeads * config.headDim
        let std: Float = 0.02
        var specs: [ParameterSpec] = []
        func add(_ name: String, _ shape: [Int], _ initialization: Initialization, transposed: Bool = false) {
            specs.append(ParameterSpec(name: name, shape: shape, storedTransposed: transposed, initialization: initialization))
        }
        switch config.family {
        case .gpt2:
            // GPT-2 scales the residual projections by 1/sqrt(2·layers) at init.
            let residualStd = std / Float(2 * config.numLayers).squareRoot()
            add("transformer.wte.weight", [v, d], .normal(std: std))
            add("transformer.wpe.weight", [config.maxPositions, d], .normal(std: std))
            for i in 0..<config.numLayers {
                let p = "transformer.h.\(i)."
                add(p + "ln_1.weight", [d], .ones)
                add(p + "ln_1.bias", [d], .zeros)
                add(p + "attn.c_attn.weight", [3 * d, d], .normal(std: std), transposed: true)
                add(p + "attn.c_attn.bias", [3 * d], .zeros)
                add(p + "attn.c_proj.weight", [d, d], .normal(std: residualStd), transposed: true)
                add(p + "attn.c_proj.bias", [d], .zeros)
                add(p + "ln_2.weight", [d], .ones)
                add(p + "ln_2.bias", [d], .zeros)
                add(p + "mlp.c_fc.weight", [f, d], .normal(std: std), transposed: true)
                add(p + "mlp.c_fc.bias", [f], .zeros)
                add(p + "mlp.c_proj.weight", [d, f], .normal(std: residualStd), transposed: true)
                add(p + "mlp.c_proj.bias", [d], .zeros)
            }
            add("transformer.ln_f.weight", [d], .ones)
            add("transformer.ln_f.bias", [d], .zeros)
        case .llama:
            add("model.embed_tokens.weight", [v, d], .normal(std: std))
            for i in 0..<config.numLayers {
                let p = "model.layers.\(i)."
                add(p + "input_layernorm.weight", [d], .ones)
                for (proj, out) in [("q_proj", d), ("k_proj", kvWidth), ("v_proj", kvWidth)] {
                    add(p + "self_attn.\(proj).weight", [out, d], .normal(std: std))
                    if config.qkvBias { add(p + "self_attn.\(proj).bias", [out], .zeros) }
                }
                add(p + "self_attn.o_proj.weight", [d, d], .normal(std: std))
                if config.outputBias { add(p + "self_attn.o_proj.bias", [d], .zeros) }
                add(p + "post_attention_layernorm.weight", [d], .ones)
                add(p + "mlp.gate_proj.weight", [f, d], .normal(std: std))
                if config.mlpBias { add(p + "mlp.gate_proj.bias", [f], .zeros) }
                add(p + "mlp.up_proj.weight", [f, d], .normal(std: std))
                if config.mlpBias { add(p + "mlp.up_proj.bias", [f], .zeros) }
                add(p + "mlp.down_proj.weight", [d, f], .normal(std: std))
                if config.mlpBias { add(p + "mlp.down_proj.bias", [d], .zeros) }
            }
            add("model.norm.weight", [d], .ones)
        }
        if !config.tieWordEmbeddings {
            add("lm_head.weight", [v, d], .normal(std: std))
        }
        return specs
    }
}
