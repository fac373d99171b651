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
    public func scores(_ deltas: [ChannelUpdates]) -> [ChannelScores] {
        guard let first = deltas.first else { return [] }
        let n = deltas.count
        return first.blocks.indices.map { b in
            let shape = first.blocks[b]
            var norm = [Double](repeating: 0, count: shape.units)
            var consistency = [Double](repeating: 0, count: shape.units)
            var norms = [Double](repeating: 0, count: n)
            for j in 0..<shape.units {
                for i in 0..<n { norms[i] = Self.dot(deltas[i].blocks[b].channel(j), deltas[i].blocks[b].channel(j)).squareRoot() }
                norm[j] = norms.reduce(0, +) / Double(n)
                guard n > 1 else { continue }
                var sum = 0.0
                for i in 0..<n {
                    for l in (i + 1)..<n where norms[i] > 0 && norms[l] > 0 {
                        let cos = Self.dot(deltas[i].blocks[b].channel(j), deltas[l].blocks[b].channel(j)) / (norms[i] * norms[l])
                        sum += max(0, cos)
                    }
                }
                consistency[j] = sum / Double(n * (n - 1) / 2)
            }
            if normalizeNorm {
                let mean = norm.reduce(0, +) / Double(max(norm.count, 1))
                if mean > 0 { norm = norm.map { $0 / mean } }
            }
            let total = zip(norm, consistency).map { $0 + lambda * $1 }
            return ChannelScores(layer: shape.layer, module: shape.module, norm: norm, consistency: consistency, total: total)
        }
    }

    static func dot(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
        var s = 0.0
        var i = a.startIndex, k = b.startIndex
        while i < a.endIndex {
            s += Double(a[i]) * Double(b[k])
            i += 1
            k += 1
        }
        return s
    }
}
