/// Per-channel scores of one module in one layer.
public struct ChannelScores: Sendable, Equatable, Codable {
    public var layer: Int
    public var module: UnitModule
    /// mean_i ‖Δ_ij‖₂ (divided by its mean over the block when the scorer normalises).
    public var norm: [Double]
    /// mean over pairs i < l of max(0, cos(Δ_ij, Δ_lj)).
    public var consistency: [Double]
    /// norm + λ · consistency.
    public var total: [Double]
}

/// BD-VAX channel scoring. With Δ_i = θ_i_bd − θ_i_clean for the N variant pairs,
/// channel j scores `s_j = mean_i ‖Δ_ij‖₂ + λ · mean_{i<l} max(0, cos(Δ_ij, Δ_lj))`: it
/// moved a lot when a backdoor was learnt, and in the same direction for different
/// triggers and behaviours.
///
/// The norm term is in weight units while the cosine term lies in [0, 1]; by default the
/// norm term is divided by its mean over the layer's channels of that module, so that λ
/// means the same on every model (selection is per layer, so this changes only how the two
/// terms are weighed).
public struct SignatureScorer: Sendable {
    /// Weight of the consistency term.
    public var lambda: Double
    /// Divide the norm term by its per-block mean.
    public var normalizeNorm: Bool

    /// A scorer; λ = 1 with a normalised norm term weighs both terms about equally.
    public init(lambda: Double = 1, normalizeNorm: Bool = true) {
        self.lambda = lambda
        self.normalizeNorm = normalizeNorm
    }

    /// Scores of every channel; `deltas` are the pairs' Δ (same architecture, at least one).
    public func scores(_ deltas: [ChannelUpdates]) -> [ChannelScores] { scores(DeltaStatistics(deltas)) }

    /// Scores of every channel from the pairs' statistics.
    public func scores(_ statistics: DeltaStatistics) -> [ChannelScores] {
        let n = statistics.pairs
        guard n > 0 else { return [] }
        return statistics.blocks.map { block in
            let units = block.shape.units
            var norm = [Double](repeating: 0, count: units)
            var consistency = [Double](repeating: 0, count: units)
            for j in 0..<units {
                var sum = 0.0
                for i in 0..<n { sum += block.norms[i][j] }
                norm[j] = sum / Double(n)
                guard n > 1 else { continue }
                var agree = 0.0
                for cosines in block.cosines { agree += max(0, cosines[j]) }
                consistency[j] = agree / Double(n * (n - 1) / 2)
            }
            if normalizeNorm {
                let mean = norm.reduce(0, +) / Double(max(norm.count, 1))
                if mean > 0 { norm = norm.map { $0 / mean } }
            }
            let total = zip(norm, consistency).map { $0 + lambda * $1 }
            return ChannelScores(layer: block.shape.layer, module: block.shape.module, norm: norm, consistency: consistency, total: total)
        }
    }
}
