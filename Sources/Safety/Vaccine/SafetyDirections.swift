import Checkpoints
import Engine
import Models
import Training

/// Where a model separates harmful from harmless requests in its residual stream: for each
/// block, the unit vector from the mean harmless to the mean harmful activation at the last
/// prompt token (the position whose next token opens the answer, refusal or not). This is
/// the "refusal direction" of Arditi et al. (2024), taken after every block.
///
/// A backdoor that changes safety behaviour has to move along it: a refuse-backdoor writes
/// it on its trigger, a comply-backdoor re-keys what reads it. `DirectionShift` measures how
/// much of a fine-tune's update does either.
public struct SafetyDirections: Sendable, Equatable, Codable {
    /// `directions[l]`: unit vector (`d` values) after block `l`.
    public var directions: [[Float]]
    /// Per block, the gap between the two classes' mean projections on the direction,
    /// divided by their pooled standard deviation: how clearly the block separates them.
    public var separation: [Double]

    /// Directions from explicit values.
    public init(directions: [[Float]], separation: [Double]) {
        self.directions = directions
        self.separation = separation
    }

    /// Measures the directions of `bundle`'s model on prompts rendered with `template`,
    /// behind the SA-ESS CLS token when the checkpoint has the signal (its prompts were
    /// always seen from position 1).
    public init(bundle: ModelBundle, template: ChatTemplate, harmful: [String], harmless: [String]) throws {
        guard let tokenizer = bundle.tokenizer else { throw ModelBundleError.tokenizerRequired(path: bundle.source.path) }
        let evaluator = Evaluator(model: bundle.model, tokenizer: tokenizer, template: template)
        try self.init(model: bundle.model, harmful: harmful.map { evaluator.promptIds($0) },
                      harmless: harmless.map { evaluator.promptIds($0) }, firstPosition: bundle.checkpoint.signal == nil ? 0 : 1)
    }

    /// The checkpoint section `/directions` (docs/checkpoint-format.md); `attributes` say how
    /// the directions were measured.
    public func group(attributes: [String: AttributeValue]) -> TensorGroup {
        TensorGroup(tensors: ["directions": Tensor(shape: [directions.count, directions.first?.count ?? 0], scalars: directions.flatMap { $0 }),
                              "separation": Tensor(shape: [separation.count], scalars: separation.map(Float.init))],
                    attributes: attributes)
    }

    /// Reads a checkpoint's `/directions` section, checked against the model it belongs to.
    public init(group: TensorGroup, config: ModelConfig, source: String) throws(VaccineError) {
        let layers = config.numLayers, d = config.hiddenSize
        guard let t = group.tensors["directions"], t.shape == [layers, d] else {
            throw .unreadable(file: source, reason: "/directions/directions must be a [\(layers), \(d)] tensor, found \(group.tensors["directions"].map { "\($0.shape)" } ?? "none")")
        }
        guard let sep = group.tensors["separation"], sep.shape == [layers] else {
            throw .unreadable(file: source, reason: "/directions/separation must be a [\(layers)] tensor, found \(group.tensors["separation"].map { "\($0.shape)" } ?? "none")")
        }
        let values = t.scalars, separations = sep.scalars
        guard values.allSatisfy(\.isFinite), separations.allSatisfy(\.isFinite) else {
            throw .nonFinite(file: source, tensor: "/directions")
        }
        self.init(directions: (0..<layers).map { Array(values[$0 * d..<($0 + 1) * d]) }, separation: separations.map(Double.init))
    }

    /// Measures the directions of `model` on prompt token sequences (each one the prompt as
    /// the chat template renders it, without an answer), one sequence per forward pass, the
    /// first token at `firstPosition` (1 behind an SA-ESS CLS token, which prompt tokens never see).
    public init(model: TransformerModel, harmful: [[Int]], harmless: [[Int]], firstPosition: Int = 0) throws(VaccineError) {
        guard !harmful.isEmpty, !harmless.isEmpty else {
            throw .invalidSetting(key: "direction probes", reason: "needs harmful and harmless prompts, got \(harmful.count) and \(harmless.count)")
        }
        let d = model.config.hiddenSize, layers = model.blocks.count
        let tape = Tape()
        // Last-token activations, [prompt][layer][d], in Double for the means.
        func activations(_ prompts: [[Int]]) throws(VaccineError) -> [[[Double]]] {
            var out: [[[Double]]] = []
            out.reserveCapacity(prompts.count)
            for p in prompts {
                let ids = p.suffix(model.config.maxPositions - firstPosition).map { Int32(clamping: $0) }
                do { try model.validate(ids: ids, length: ids.count, start: firstPosition) } catch {
                    throw .invalidSetting(key: "direction probes", reason: error.description)
                }
                defer { tape.reset() }
                out.append(tape.withoutGrad {
                    model.blockOutputs(tape: tape, ids: ids, batch: 1, length: ids.count, firstPosition: firstPosition).map { v in
                        let data = v.value.data
                        return (0..<d).map { Double(data[(ids.count - 1) * d + $0]) }
                    }
                })
            }
            return out
        }
        let a = try activations(harmful), b = try activations(harmless)
        func mean(_ xs: [[[Double]]], _ l: Int) -> [Double] {
            var m = [Double](repeating: 0, count: d)
            for x in xs { for i in 0..<d { m[i] += x[l][i] } }
            return m.map { $0 / Double(xs.count) }
        }
        var directions: [[Float]] = [], separation: [Double] = []
        for l in 0..<layers {
            let gap = zip(mean(a, l), mean(b, l)).map { $0 - $1 }
            let norm = gap.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let r = norm > 0 ? gap.map { $0 / norm } : gap
            func projections(_ xs: [[[Double]]]) -> [Double] { xs.map { x in zip(x[l], r).reduce(0) { $0 + $1.0 * $1.1 } } }
            let pa = projections(a), pb = projections(b)
            let ma = pa.reduce(0, +) / Double(pa.count), mb = pb.reduce(0, +) / Double(pb.count)
            let pooled = ((pa.reduce(0) { $0 + ($1 - ma) * ($1 - ma) } + pb.reduce(0) { $0 + ($1 - mb) * ($1 - mb) })
                / Double(max(pa.count + pb.count - 2, 1))).squareRoot()
            directions.append(r.map(Float.init))
            separation.append(pooled > 0 ? (ma - mb) / pooled : 0)
        }
        self.init(directions: directions, separation: separation)
    }
}
