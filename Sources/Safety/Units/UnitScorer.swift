import Engine
import Models
import Training

/// Computes SSAH unit importance on a dataset: runs the model without gradients, captures
/// X_B (the input of every block's `down_proj` / `mlp.c_proj` and `o_proj` / `attn.c_proj`)
/// at every non-padding token position, and scores each unit j as
/// `Var_n(X_B[n, j]) · ‖B[:, j]‖²` (population variance over all positions of all sequences).
///
/// Sequences run in right-padded batches of similar length; causal attention keeps real
/// tokens blind to the padding after them, and padding positions are left out of the
/// statistics. Variances stream through `ChannelVariance` (Double, chunk-exact merge), so
/// nothing is allocated per token.
public struct UnitScorer {
    /// The model scored; its projections' input observers are borrowed during `score`.
    public let model: TransformerModel
    /// Sequences per forward pass.
    public var batchSize: Int

    /// A scorer for `model`.
    public init(model: TransformerModel, batchSize: Int = 8) {
        self.model = model
        self.batchSize = max(1, batchSize)
    }

    /// Scores every unit on `examples` (token ids as `ExampleEncoder` renders them:
    /// prompt and completion through the chat template). Sequences longer than the model's
    /// context are truncated. `name` labels errors.
    public func score(_ examples: [EncodedExample], name: String) throws(UnitMapError) -> UnitScores {
        try score(sequences: examples.map(\.ids), name: name)
    }

    /// Scores every unit on raw token sequences; see `score(_:name:)`.
    public func score(sequences: [[Int32]], name: String) throws(UnitMapError) -> UnitScores {
        let limit = model.config.maxPositions
        var order: [Int] = []
        for (i, ids) in sequences.enumerated() where !ids.isEmpty {
            do {
                try model.validate(ids: Array(ids.prefix(limit)), length: min(ids.count, limit))
            } catch {
                throw .badExample(name: name, index: i, reason: error.description)
            }
            order.append(i)
        }
        guard !order.isEmpty else { throw .emptyDataset(name: name) }
        // Longest first, so each batch pads little; the statistics do not depend on order.
        order.sort { (min(sequences[$0].count, limit), $1) > (min(sequences[$1].count, limit), $0) }

        let blocks = model.blocks
        let mlpStats = blocks.map { ChannelVariance(channels: $0.mlp.down.inFeatures) }
        let attnStats = blocks.map { ChannelVariance(channels: $0.attention.output.inFeatures) }
        let rows = RowSelection()
        for (i, block) in blocks.enumerated() {
            let (m, a) = (mlpStats[i], attnStats[i])
            block.mlp.down.inputObserver = { x in m.add(x, rows: rows.indices) }
            block.attention.output.inputObserver = { x in a.add(x, rows: rows.indices) }
        }
        defer {
            for block in blocks {
                block.mlp.down.inputObserver = nil
                block.attention.output.inputObserver = nil
            }
        }

        let tape = Tape()
        var tokens = 0
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let members = order[start..<min(start + batchSize, order.count)]
            let length = members.map { min(sequences[$0].count, limit) }.max() ?? 1
            var ids = [Int32](repeating: 0, count: members.count * length)
            rows.indices.removeAll(keepingCapacity: true)
            for (b, i) in members.enumerated() {
                let n = min(sequences[i].count, limit)
                for t in 0..<n {
                    ids[b * length + t] = sequences[i][t]
                    rows.indices.append(b * length + t)
                }
            }
            tokens += rows.indices.count
            tape.withoutGrad {
                _ = model.hiddenStates(tape: tape, ids: ids, batch: members.count, length: length)
            }
            tape.reset()
        }

        var mlp: [[Double]] = [], attn: [[Double]] = []
        for (i, block) in blocks.enumerated() {
            mlp.append(Self.channelScores(variance: mlpStats[i].variance, projection: block.mlp.down.weight.value))
            let channels = Self.channelScores(variance: attnStats[i].variance, projection: block.attention.output.weight.value)
            let d = block.attention.headDim
            attn.append((0..<block.attention.heads).map { h in channels[(h * d)..<((h + 1) * d)].reduce(0, +) })
        }
        return UnitScores(mlp: mlp, attn: attn, tokens: tokens)
    }

    /// `variance[j] · ‖B[:, j]‖²` for a projection `B` stored `[out, in]` (column j = input channel j).
    public static func channelScores(variance: [Double], projection: Tensor) -> [Double] {
        let out = projection.shape[0], cols = projection.shape[1]
        precondition(variance.count == cols, "channelScores: \(variance.count) variances for \(cols) columns")
        var norms = [Double](repeating: 0, count: cols)
        let w = projection.data
        for r in 0..<out {
            let row = w + r * cols
            for j in 0..<cols {
                let v = Double(row[j])
                norms[j] += v * v
            }
        }
        return (0..<cols).map { variance[$0] * norms[$0] }
    }
}

/// The flat `[B·T]` row indices of the current batch's real tokens, shared with the observers.
private final class RowSelection {
    var indices: [Int] = []
}
