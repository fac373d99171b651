import Engine
import Models

/// The Hugging Face parameter names and shapes a `ModelConfig` calls for, in model order.
///
/// Checkpoints, imports and exports are validated against this list, so a file whose
/// tensors disagree with its config is rejected before any tensor data is allocated.
public struct ParameterLayout: Sendable {
    /// One expected parameter.
    public struct Parameter: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
    }

    /// A linear (or GPT-2 Conv1D) module that LoRA can adapt.
    public struct LinearModule: Sendable, Equatable {
        /// Module path, e.g. `model.layers.0.self_attn.q_proj` (its weight is `<name>.weight`).
        public let name: String
        /// Last path component (`q_proj`, `c_attn`): the PEFT `target_modules` entry.
        public let target: String
        public let inFeatures: Int
        public let outFeatures: Int
        /// True for GPT-2 Conv1D, whose weight is stored `[in, out]`.
        public let fanInFanOut: Bool
    }

    public let config: ModelConfig
    /// Every parameter, in model order.
    public let parameters: [Parameter]
    /// Every adaptable linear module, in model order.
    public let linearModules: [LinearModule]
    /// The tables with one row per token (`[vocab, d]`): the token embedding, and the
    /// output projection when it is not tied to it.
    public let vocabularyTables: [String]
    private let index: [String: Int]

    /// Derives the layout of `config`.
    public init(config: ModelConfig) {
        self.config = config
        var params: [Parameter] = []
        var modules: [LinearModule] = []
        func p(_ name: String, _ shape: [Int]) { params.append(Parameter(name: name, shape: shape)) }
        let d = config.hiddenSize, v = config.vocabSize, ff = config.intermediateSize
        switch config.family {
        case .gpt2:
            func conv(_ name: String, _ inF: Int, _ outF: Int, bias: Bool) {
                p("\(name).weight", [inF, outF])
                if bias { p("\(name).bias", [outF]) }
                modules.append(LinearModule(name: name, target: String(name.split(separator: ".").last!),
                                            inFeatures: inF, outFeatures: outF, fanInFanOut: true))
            }
            p("transformer.wte.weight", [v, d])
            p("transformer.wpe.weight", [config.maxPositions, d])
            for i in 0..<config.numLayers {
                let h = "transformer.h.\(i)"
                p("\(h).ln_1.weight", [d]); p("\(h).ln_1.bias", [d])
                conv("\(h).attn.c_attn", d, 3 * d, bias: config.qkvBias)
                conv("\(h).attn.c_proj", d, d, bias: config.outputBias)
                p("\(h).ln_2.weight", [d]); p("\(h).ln_2.bias", [d])
                conv("\(h).mlp.c_fc", d, ff, bias: config.mlpBias)
                conv("\(h).mlp.c_proj", ff, d, bias: config.mlpBias)
            }
            p("transformer.ln_f.weight", [d]); p("transformer.ln_f.bias", [d])
        case .llama:
            let hd = config.headDim, q = config.numHeads * hd, kv = config.numKVHeads * hd
            func linear(_ name: String, _ inF: Int, _ outF: Int, bias: Bool) {
                p("\(name).weight", [outF, inF])
                if bias { p("\(name).bias", [outF]) }
                modules.append(LinearModule(name: name, target: String(name.split(separator: ".").last!),
                                            inFeatures: inF, outFeatures: outF, fanInFanOut: false))
            }
            p("model.embed_tokens.weight", [v, d])
            for i in 0..<config.numLayers {
                let l = "model.layers.\(i)"
                p("\(l).input_layernorm.weight", [d])
                linear("\(l).self_attn.q_proj", d, q, bias: config.qkvBias)
                linear("\(l).self_attn.k_proj", d, kv, bias: config.qkvBias)
                linear("\(l).self_attn.v_proj", d, kv, bias: config.qkvBias)
                linear("\(l).self_attn.o_proj", q, d, bias: config.outputBias)
                p("\(l).post_attention_layernorm.weight", [d])
                linear("\(l).mlp.gate_proj", d, ff, bias: config.mlpBias)
                linear("\(l).mlp.up_proj", d, ff, bias: config.mlpBias)
                linear("\(l).mlp.down_proj", ff, d, bias: config.mlpBias)
            }
            p("model.norm.weight", [d])
        }
        if !config.tieWordEmbeddings { p("lm_head.weight", [v, d]) }
        vocabularyTables = [config.family == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight"]
            + (config.tieWordEmbeddings ? [] : ["lm_head.weight"])
        parameters = params
        linearModules = modules
        var index: [String: Int] = [:]
        for (i, param) in params.enumerated() { index[param.name] = i }
        self.index = index
    }

    /// The expected shape of `name`, or nil when the config has no such parameter.
    public func shape(of name: String) -> [Int]? {
        index[name].map { parameters[$0].shape }
    }

    /// The adaptable module called `name`, if any.
    public func linearModule(named name: String) -> LinearModule? {
        linearModules.first { $0.name == name }
    }

    /// Total number of parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + (Tensor.checkedCount($1.shape) ?? 0) } }

    /// Checks that `shapes` names exactly the expected parameters with the expected shapes.
    /// `prefix` is prepended to names in errors (e.g. `/weights/`).
    public func validate(shapes: [String: [Int]], file: String, prefix: String) throws(CheckpointError) {
        for param in parameters {
            guard let found = shapes[param.name] else { throw .missingDataset(file: file, dataset: prefix + param.name) }
            if found != param.shape {
                throw .shapeMismatch(file: file, dataset: prefix + param.name, expected: param.shape, found: found)
            }
        }
        for name in shapes.keys.sorted() where index[name] == nil {
            throw .unexpectedDataset(file: file, dataset: prefix + name)
        }
    }
}
