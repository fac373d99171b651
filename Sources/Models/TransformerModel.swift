import Engine

/// A decoder-only transformer of the GPT-2 or Llama family (Llama, Qwen2, Mistral), built
/// from `Embedding`, `Block` (`Norm`, `Attention`, `MLP`), a final `Norm` and the LM head.
///
/// All parameters live in one contiguous arena (`parameterStorage`), each a `Variable`
/// view named with its Hugging Face name. Every projection is a `Linear`, reachable by
/// module path through `namedLinears`, which is where adapters attach.
public final class TransformerModel {
    /// The architecture.
    public let config: ModelConfig
    /// Token embeddings (`wte` / `embed_tokens`), `[V, d]`.
    public let tokenEmbedding: Embedding
    /// Learned positions (`wpe`, GPT-2 only), `[maxPositions, d]`.
    public let positionEmbedding: Embedding?
    /// The transformer blocks.
    public let blocks: [Block]
    /// `ln_f` / `model.norm`.
    public let finalNorm: Norm
    /// `[V, d]`; its weight is the token table itself when embeddings are tied.
    public let lmHead: Linear
    /// Every parameter, once each (a tied head is listed only as the token table), in arena order.
    public let namedParameters: [(String, Variable)]
    /// The arena all parameter values are views into.
    public let parameterStorage: TensorStorage

    /// A model with the Hugging Face weights `weights` (names and layouts as in the
    /// model's `model.safetensors`; GPT-2 Conv1D weights `[in, out]`). Buffers that are not
    /// parameters (GPT-2 `attn.bias`, rotary `inv_freq`) and a tied `lm_head.weight` are
    /// ignored; GPT-2 names without the `transformer.` prefix are accepted.
    ///
    /// - trainable: whether the base parameters require gradients (false for adapters-only training).
    ///
    /// Each tensor of `weights` is let go once it is copied: a caller that hands its only
    /// reference over (`consume`) holds the model's weights about once, not twice, at load.
    public convenience init(config: ModelConfig, weights: consuming [String: Tensor], trainable: Bool = true) throws(ModelError) {
        try Self.check(config)
        let specs = ParameterSpec.all(for: config)
        var byName: [String: Tensor] = [:]
        for (key, tensor) in weights {
            let name = Self.canonicalName(key, config: config)
            if Self.isIgnorable(name, config: config) { continue }
            byName[name] = tensor
        }
        weights = [:]
        let known = Set(specs.map(\.name))
        if let stray = byName.keys.sorted().first(where: { !known.contains($0) }) {
            throw .unexpectedWeight(name: stray)
        }
        for spec in specs {
            guard let t = byName[spec.name] else { throw .missingWeight(name: spec.name) }
            if t.shape != spec.huggingFaceShape {
                throw .shapeMismatch(name: spec.name, expected: spec.huggingFaceShape, found: t.shape)
            }
        }
        self.init(config: config, specs: specs, trainable: trainable) { spec, dst in
            guard let src = byName.removeValue(forKey: spec.name) else { return }
            if spec.storedTransposed {
                Self.transpose(src, rows: spec.shape[1], cols: spec.shape[0], into: dst)
            } else {
                dst.assign(src)
            }
        }
    }

    /// A freshly initialised model (GPT-2 style: normal 0.02 weights, residual projections
    /// scaled by 1/sqrt(2·layers) for GPT-2, zero biases, unit norms), reproducible from `seed`.
    public convenience init(config: ModelConfig, seed: UInt64, trainable: Bool = true) throws(ModelError) {
        try Self.check(config)
        var rng = SeededRandom(seed: seed)
        self.init(config: config, specs: ParameterSpec.all(for: config), trainable: trainable) { spec, dst in
            switch spec.initialization {
            case let .normal(std): rng.fillNormal(dst, std: std)
            case .zeros: dst.fill(0)
            case .ones: dst.fill(1)
            }
        }
    }

    /// Lays out the arena, fills each parameter with `fill`, then assembles the layers.
    private init(config: ModelConfig, specs: [ParameterSpec], trainable: Bool, fill: (ParameterSpec, Tensor) -> Void) {
        self.config = config
        let storage = TensorStorage(count: specs.reduce(0) { $0 + Tensor.elementCount($1.shape) })
        var offset = 0
        var params: [String: Variable] = [:]
        var named: [(String, Variable)] = []
        var transposed: Set<String> = []
        for spec in specs {
            let view = Tensor(shape: spec.shape, storage: storage, offset: offset)
            offset += view.count
            fill(spec, view)
            let v = Variable(view, requiresGrad: trainable, name: spec.name)
            params[spec.name] = v
            named.append((spec.name, v))
            if spec.storedTransposed { transposed.insert(spec.name) }
        }
        parameterStorage = storage
        namedParameters = named

        // Every name below comes from ParameterSpec.all(for: config), so the lookups cannot fail.
        func p(_ name: String) -> Variable { params[name]! }
        func pOpt(_ name: String) -> Variable? { params[name] }
        func linear(_ path: String) -> Linear {
            Linear(path: path, weight: p(path + ".weight"), bias: pOpt(path + ".bias"),
                   storedTransposed: transposed.contains(path + ".weight"))
        }
        let eps = config.normEps
        switch config.family {
        case .gpt2:
            tokenEmbedding = Embedding(table: p("transformer.wte.weight"))
            positionEmbedding = Embedding(table: p("transformer.wpe.weight"))
            blocks = (0..<config.numLayers).map { i in
                let b = "transformer.h.\(i)."
                return Block(
                    attentionNorm: Norm(kind: .layer, weight: p(b + "ln_1.weight"), bias: p(b + "ln_1.bias"), eps: eps),
                    attention: Attention(projections: .fused(linear(b + "attn.c_attn")), output: linear(b + "attn.c_proj"),
                                         heads: config.numHeads, kvHeads: config.numKVHeads, headDim: config.headDim, ropeTheta: nil),
                    mlpNorm: Norm(kind: .layer, weight: p(b + "ln_2.weight"), bias: p(b + "ln_2.bias"), eps: eps),
                    mlp: MLP(form: .gelu(fc: linear(b + "mlp.c_fc")), down: linear(b + "mlp.c_proj")))
            }
            finalNorm = Norm(kind: .layer, weight: p("transformer.ln_f.weight"), bias: p("transformer.ln_f.bias"), eps: eps)
        case .llama:
            tokenEmbedding = Embedding(table: p("model.embed_tokens.weight"))
            positionEmbedding = nil
            blocks = (0..<config.numLayers).map { i in
                let b = "model.layers.\(i)."
                return Block(
                    attentionNorm: Norm(kind: .rms, weight: p(b + "input_layernorm.weight"), bias: nil, eps: eps),
                    attention: Attention(
                        projections: .separate(q: linear(b + "self_attn.q_proj"), k: linear(b + "self_attn.k_proj"),
                                               v: linear(b + "self_attn.v_proj")),
                        output: linear(b + "self_attn.o_proj"), heads: config.numHeads, kvHeads: config.numKVHeads,
                        headDim: config.headDim, ropeTheta: config.ropeTheta),
                    mlpNorm: Norm(kind: .rms, weight: p(b + "post_attention_layernorm.weight"), bias: nil, eps: eps),
                    mlp: MLP(form: .swiglu(gate: linear(b + "mlp.gate_proj"), up: linear(b + "mlp.up_proj")),
                             down: linear(b + "mlp.down_proj")))
            }
            finalNorm = Norm(kind: .rms, weight: p("model.norm.weight"), bias: nil, eps: eps)
        }
        lmHead = config.tieWordEmbeddings
            ? Linear(path: "lm_head", weight: tokenEmbedding.table, bias: nil)
            : linear("lm_head")
    }

    // MARK: Weights in Hugging Face form

    /// Every parameter in Hugging Face names and layouts (GPT-2 Conv1D weights back to
    /// `[in, out]`), as copies. A tied LM head is omitted, as Hugging Face saves it.
    ///
    /// `sharing`: tensors in the model's own layout are views of its parameters instead,
    /// for a save or a model copy made at once: 135M parameters then need no second half
    /// gigabyte. A view changes as the model trains.
    public func huggingFaceWeights(sharing: Bool = false) -> [String: Tensor] {
        huggingFaceLayout(copying: !sharing) { $0.value }
    }

    /// Every parameter's accumulated gradient in Hugging Face names and layouts (zeros where
    /// none was computed), as copies: what PyTorch's `param.grad` holds after the same backward.
    public func huggingFaceGradients() -> [String: Tensor] {
        huggingFaceLayout(copying: true) { $0.grad ?? Tensor(zeros: $0.shape) }
    }

    private func huggingFaceLayout(copying: Bool, _ pick: (Variable) -> Tensor) -> [String: Tensor] {
        let transposed = Set(ParameterSpec.all(for: config).filter(\.storedTransposed).map(\.name))
        var out: [String: Tensor] = [:]
        for (name, v) in namedParameters {
            let t = pick(v)
            if transposed.contains(name) {
                let hf = Tensor(zeros: [v.shape[1], v.shape[0]])
                Self.transpose(t, rows: v.shape[0], cols: v.shape[1], into: hf)
                out[name] = hf
            } else {
                out[name] = copying ? t.copy() : t
            }
        }
        return out
    }

    /// Every projection with its Hugging Face module path (`transformer.h.0.attn.c_attn`,
    /// `model.layers.3.mlp.down_proj`, ...), the LM head last: the targets adapters attach to.
    public var namedLinears: [(String, Linear)] {
        var out: [(String, Linear)] = []
        for block in blocks {
            for l in block.attention.linears + block.mlp.linears { out.append((l.path, l)) }
        }
        out.append((lmHead.path, lmHead))
        return out
    }

    /// Number of scalar parameters (a tied head counted once).
    public var parameterCount: Int { parameterStorage.count }

    // MARK: Forward

    /// Final hidden states `[B, T, d]` (after the final norm) for `ids` (B·T tokens, row-major).
    ///
    /// - mask: replaces the causal rule when given (`[B, T, Tk]`); the SA-ESS CLS layout.
    /// - positions: B·T absolute positions; default `cached + t` for every row.
    /// - cache: a KV cache holding B sequences' earlier positions (a `KVCache` one, a
    ///   `BatchedKVCache` the slots it feeds); the new positions are appended and the cache
    ///   advanced. Runs without recording (gradients do not flow through cached keys).
    /// Callers validate ids and lengths first (`validate(ids:length:)`).
    public func hiddenStates(tape: Tape, ids: [Int32], batch: Int, length: Int, mask: AttentionMask? = nil,
                             positions: [Int32]? = nil, cache: (any KeyValueStore)? = nil) -> Variable {
        precondition(ids.count == batch * length, "forward: \(ids.count) ids for batch \(batch) × length \(length)")
        precondition(cache == nil || cache!.positions.count == batch, "forward: the cache feeds \(cache?.positions.count ?? 0) sequences, not \(batch)")
        if let cache {
            return tape.withoutGrad { run(tape: tape, ids: ids, batch: batch, length: length, mask: mask, positions: positions, cache: cache) }
        }
        return run(tape: tape, ids: ids, batch: batch, length: length, mask: mask, positions: positions, cache: nil)
    }

    private func run(tape: Tape, ids: [Int32], batch: Int, length: Int, mask: AttentionMask?,
                     positions: [Int32]?, cache: (any KeyValueStore)?) -> Variable {
        let starts = cache?.positions ?? [Int](repeating: 0, count: batch)
        let pos = positions ?? starts.flatMap { start in (0..<length).map { Int32(start + $0) } }
        precondition(pos.count == batch * length, "forward: \(pos.count) positions for \(batch * length) tokens")
        return transform(tape: tape, embed(tape: tape, ids: ids, positions: pos, batch: batch, length: length),
                         positions: pos, mask: mask, cache: cache)
    }

    /// The residual stream after every block, `[B, T, d]` each (before the final norm), for
    /// `ids` under the causal rule at positions `firstPosition`…; what analyses of the model's
    /// internal directions read.
    public func blockOutputs(tape: Tape, ids: [Int32], batch: Int, length: Int, firstPosition: Int = 0) -> [Variable] {
        precondition(ids.count == batch * length, "forward: \(ids.count) ids for batch \(batch) × length \(length)")
        let pos = (0..<batch).flatMap { _ in (0..<length).map { Int32(firstPosition + $0) } }
        var outputs: [Variable] = []
        _ = transform(tape: tape, embed(tape: tape, ids: ids, positions: pos, batch: batch, length: length),
                      positions: pos, mask: nil, cache: nil) { outputs.append($1) }
        return outputs
    }

    /// Input embeddings `[B, T, d]`: token rows, plus learned position rows (GPT-2).
    func embed(tape: Tape, ids: [Int32], positions: [Int32], batch: Int, length: Int) -> Variable {
        let x = tokenEmbedding.forward(tape: tape, ids: ids, shape: [batch, length])
        guard let positionEmbedding else { return x }
        return tape.add(x, positionEmbedding.forward(tape: tape, ids: positions, shape: [batch, length]))
    }

    /// The blocks and the final norm over input embeddings `x` `[B, T, d]`; `observe` sees
    /// each block's output (the residual stream) as it is made.
    func transform(tape: Tape, _ input: Variable, positions: [Int32], mask: AttentionMask?, cache: (any KeyValueStore)?,
                   observe: ((Int, Variable) -> Void)? = nil) -> Variable {
        var x = input
        for (i, block) in blocks.enumerated() {
            x = block.forward(tape: tape, x, positions: positions, mask: mask, cache: cache, layer: i)
            observe?(i, x)
            tape.recycle()
        }
        cache?.advance(by: x.shape[1])
        return finalNorm.forward(tape: tape, x)
    }

    /// LM-head logits for hidden states `[..., d]` → `[..., V]`; with `rows`, only those rows of
    /// the hidden states viewed as `[N, d]` → `[rows.count, V]` (generation needs the last one).
    public func logits(tape: Tape, hidden: Variable, rows: [Int]? = nil) -> Variable {
        guard let rows else { return lmHead.forward(tape: tape, hidden) }
        return lmHead.forward(tape: tape, tape.gatherRows(hidden, rows: rows))
    }

    /// Logits `[B, T, V]` for `ids`; see `hiddenStates` for the arguments.
    public func forward(tape: Tape, ids: [Int32], batch: Int, length: Int, mask: AttentionMask? = nil,
                        positions: [Int32]? = nil, cache: (any KeyValueStore)? = nil) -> Variable {
        logits(tape: tape, hidden: hiddenStates(tape: tape, ids: ids, batch: batch, length: length, mask: mask,
                                                positions: positions, cache: cache))
    }

    /// Causal-LM loss: mean cross-entropy of predicting `labels[t + 1]` from position `t`,
    /// within each row, skipping labels equal to -100 (prompt tokens, padding). `labels`
    /// defaults to `ids`. Returns a scalar `[]`, matching Hugging Face's `loss`.
    public func loss(tape: Tape, ids: [Int32], labels: [Int32]? = nil, batch: Int, length: Int,
                     mask: AttentionMask? = nil, positions: [Int32]? = nil) -> Variable {
        let hidden = hiddenStates(tape: tape, ids: ids, batch: batch, length: length, mask: mask, positions: positions)
        return languageModelLoss(tape: tape, hidden: hidden, targets: Self.shiftedTargets(labels ?? ids, batch: batch, length: length))
    }

    /// Mean cross-entropy of the LM head on `hidden` (viewed as `[N, d]`) against `targets`
    /// (`N` ids, -100 for none). The head runs only on the rows that have a target: with a
    /// 49k vocabulary it is a small model's largest product, and prompts and padding need
    /// none of it. A plain head (no bias, no adapter) is fused with the loss and run in
    /// chunks of rows, so the logits never exist whole.
    public func languageModelLoss(tape: Tape, hidden: Variable, targets: [Int32]) -> Variable {
        let rows = targets.indices.filter { targets[$0] != -100 }
        guard !rows.isEmpty else { return tape.crossEntropy(logits: logits(tape: tape, hidden: hidden), targets: targets) }
        let kept = rows.count == targets.count ? hidden : tape.gatherRows(hidden, rows: rows)
        let labels = rows.count == targets.count ? targets : rows.map { targets[$0] }
        if lmHead.bias == nil, lmHead.adapter == nil {
            return tape.linearCrossEntropy(kept, lmHead.weight, targets: labels)
        }
        return tape.crossEntropy(logits: lmHead.forward(tape: tape, kept), targets: labels)
    }

    /// Targets for position t = label at t + 1 in the same row; the last position of each row is ignored.
    public static func shiftedTargets(_ labels: [Int32], batch: Int, length: Int) -> [Int32] {
        precondition(labels.count == batch * length, "loss: \(labels.count) labels for batch \(batch) × length \(length)")
        var targets = [Int32](repeating: -100, count: labels.count)
        for b in 0..<batch where length > 1 {
            for t in 0..<(length - 1) { targets[b * length + t] = labels[b * length + t + 1] }
        }
        return targets
    }

    /// How many positions `shiftedTargets` gives a target: the loss's denominator.
    public static func targetCount(_ labels: [Int32], batch: Int, length: Int) -> Int {
        var n = 0
        for b in 0..<batch where length > 1 {
            for t in 1..<length where labels[b * length + t] != -100 { n += 1 }
        }
        return n
    }

    /// Checks token ids are in the vocabulary and the sequence fits the model (positions
    /// `start..<start + length`), so a forward never reads out of bounds.
    public func validate(ids: [Int32], length: Int, start: Int = 0) throws(ModelError) {
        if length == 0 { throw .emptyInput }
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw .tokenOutOfRange(id: Int(bad), vocabSize: config.vocabSize)
        }
        if start + length > config.maxPositions { throw .sequenceTooLong(length: start + length, limit: config.maxPositions) }
    }

    // MARK: Helpers

    private static func check(_ config: ModelConfig) throws(ModelError) {
        do { try config.validate() } catch { throw .config(error) }
    }

    /// Hugging Face GPT-2 files from older exports omit the `transformer.` prefix.
    private static func canonicalName(_ key: String, config: ModelConfig) -> String {
        guard config.family == .gpt2, !key.hasPrefix("transformer."), !key.hasPrefix("lm_head.") else { return key }
        return "transformer." + key
    }

    /// Non-parameter buffers some exports include, and a tied head's duplicate.
    private static func isIgnorable(_ name: String, config: ModelConfig) -> Bool {
        if name.hasSuffix(".attn.bias") && config.family == .gpt2 { return true }
        if name.hasSuffix(".attn.masked_bias") || name.hasSuffix("rotary_emb.inv_freq") { return true }
        return config.tieWordEmbeddings && name == "lm_head.weight"
    }

    /// dst `[cols, rows]` = transpose of src `[rows, cols]`, in cache-sized tiles.
    private static func transpose(_ src: Tensor, rows: Int, cols: Int, into dst: Tensor) {
        let s = src.data, d = dst.data, tile = 32
        for r0 in stride(from: 0, to: rows, by: tile) {
            for c0 in stride(from: 0, to: cols, by: tile) {
                for r in r0..<min(r0 + tile, rows) {
                    for c in c0..<min(c0 + tile, cols) { d[c * rows + r] = s[r * cols + c] }
                }
            }
        }
    }
}
