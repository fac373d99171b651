import Engine
import Models

/// Purification by projection: a fine-tune's update (child − parent) loses every component
/// along the parent's `SafetyDirections`, the two quantities `DirectionShift` measures set
/// to zero at every block:
///
/// - on the projections that write the residual stream (`o_proj`, `down_proj`; `[d, in]`),
///   ΔW ← (I − QᵀQ) ΔW: no output along any direction;
/// - on those that read it (q, k, v, gate, up; `[out, d]`), ΔW ← ΔW (I − QᵀQ): no change in
///   how a direction is read;
///
/// where the rows of Q are an orthonormal basis of the span of all L directions. The span
/// has L ≪ d dimensions, so the update keeps almost all of its energy; what it loses is the
/// means to turn the parent's harmful-vs-harmless signal up or down, which a backdoor that
/// switches refusal on or off needs. It needs no trigger and no variants.
public enum DirectionProjection {
    /// Projects `child`'s weights in place (same architecture as `parent`, the model the
    /// directions were measured on); returns the fraction of the update's energy removed.
    public static func apply(child: TransformerModel, parent: TransformerModel, directions: SafetyDirections,
                             file: String = "checkpoint") throws(VaccineError) -> Double {
        let d = parent.config.hiddenSize
        guard ChannelUpdates.sameBlocks(child.config, parent.config), child.blocks.count == parent.blocks.count,
              directions.directions.allSatisfy({ $0.count == d }) else {
            throw .shapeMismatch(file: file, reason: "architecture differs from the parent the safety directions were measured on")
        }
        let q = basis(directions.directions, dimension: d)
        var removed = 0.0, total = 0.0
        for (c, p) in zip(child.blocks, parent.blocks) {
            for (lc, lp) in zip([c.attention.output, c.mlp.down], [p.attention.output, p.mlp.down]) {
                let (r, t) = project(lc, lp, basis: q, side: .output)
                removed += r
                total += t
            }
            for (lc, lp) in zip(c.attention.linears.dropLast() + inputs(c.mlp), p.attention.linears.dropLast() + inputs(p.mlp)) {
                let (r, t) = project(lc, lp, basis: q, side: .input)
                removed += r
                total += t
            }
        }
        return total > 0 ? removed / total : 0
    }

    /// Rows of an orthonormal basis `[k, d]` of the span of `vectors` (Gram–Schmidt in
    /// double precision; a vector already in the span of the earlier ones adds nothing).
    static func basis(_ vectors: [[Float]], dimension d: Int) -> [Float] {
        var rows: [[Double]] = []
        for v in vectors {
            var u = v.map(Double.init)
            for _ in 0..<2 {  // twice: one pass loses orthogonality when the directions are close
                for b in rows {
                    let dot = zip(u, b).reduce(0) { $0 + $1.0 * $1.1 }
                    for i in 0..<d { u[i] -= dot * b[i] }
                }
            }
            let norm = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm > 1e-4 { rows.append(u.map { $0 / norm }) }
        }
        return rows.flatMap { $0.map(Float.init) }
    }

    private static func inputs(_ mlp: MLP) -> [Linear] {
        switch mlp.form {
        case let .gelu(fc): return [fc]
        case let .swiglu(gate, up): return [gate, up]
        }
    }

    private enum Side { case output, input }

    /// Projects `child`'s update over `parent` (`[out, in]` weights) off the span of `q`'s
    /// rows on one side; returns the energy removed and the update's energy before.
    private static func project(_ child: Linear, _ parent: Linear, basis q: [Float], side: Side) -> (Double, Double) {
        let rows = child.outFeatures, cols = child.inFeatures, d = side == .output ? rows : cols
        let k = q.count / d
        let w = child.weight.value.data, wp = parent.weight.value.data
        var delta = [Float](repeating: 0, count: rows * cols)
        var before = 0.0
        for i in delta.indices {
            delta[i] = w[i] - wp[i]
            before += Double(delta[i]) * Double(delta[i])
        }
        guard before > 0, k > 0 else { return (0, before) }
        // The update's coordinates in the span, then W ← W − (their image back in d-space).
        var part = [Float](repeating: 0, count: rows * cols)
        q.withUnsafeBufferPointer { qb in
            delta.withUnsafeBufferPointer { db in
                part.withUnsafeMutableBufferPointer { pb in
                    switch side {
                    case .output:  // Qᵀ (Q Δ): [k, in], then [d, in]
                        var coords = [Float](repeating: 0, count: k * cols)
                        coords.withUnsafeMutableBufferPointer { cb in
                            BLAS.gemm(m: k, n: cols, k: d, a: qb.baseAddress!, b: db.baseAddress!, c: cb.baseAddress!)
                            BLAS.gemm(transA: true, m: d, n: cols, k: k, a: qb.baseAddress!, b: UnsafePointer(cb.baseAddress!), c: pb.baseAddress!)
                        }
                    case .input:  // (Δ Qᵀ) Q: [out, k], then [out, d]
                        var coords = [Float](repeating: 0, count: rows * k)
                        coords.withUnsafeMutableBufferPointer { cb in
                            BLAS.gemm(transB: true, m: rows, n: k, k: d, a: db.baseAddress!, b: qb.baseAddress!, c: cb.baseAddress!)
                            BLAS.gemm(m: rows, n: d, k: k, a: UnsafePointer(cb.baseAddress!), b: qb.baseAddress!, c: pb.baseAddress!)
                        }
                    }
                }
            }
        }
        var removed = 0.0
        for i in part.indices {
            w[i] -= part[i]
            removed += Double(part[i]) * Double(part[i])
        }
        return (removed, before)
    }
}
