import Checkpoints
import Engine
import Foundation

/// Safe LoRA (Hsu et al., NeurIPS 2024, arXiv 2405.16833), the training-free baseline the
/// harmful fine-tuning experiment compares SSAH with: each LoRA update that drifts from the
/// alignment subspace is projected onto it.
///
/// Per adapted module, with W the module's weight `[out, in]`:
/// - the alignment matrix V = W_aligned − W_unaligned `[out, in]`, and the paper's
///   projection C = V · Vᵀ / ‖V‖_F `[out, out]` (its cheap form, not an exact projector);
/// - the update ΔW = s · B · A (B `[out, r]`, A `[r, in]`, s = alpha / r) and its
///   projection C · ΔW = s · (C · B) · A;
/// - when cos(ΔW, C · ΔW) (Frobenius) is below the threshold, B becomes C · B.
/// C is never formed: C · B = V · (Vᵀ · B) / ‖V‖_F.
public enum SafeLoRA {
    /// The paper's default similarity threshold.
    public static let defaultThreshold = 0.5

    /// What happened to one adapted module.
    public struct Decision: Sendable, Codable, Equatable {
        /// The module path (`model.layers.3.mlp.down_proj`).
        public var path: String
        /// cos(ΔW, C · ΔW); 1 for an update that is zero.
        public var similarity: Double
        /// Whether B was replaced by C · B.
        public var projected: Bool
    }

    /// Which modules are projected.
    public enum Selection: Sendable, Equatable {
        /// Those whose similarity is below this (the paper's default: 0.5).
        case threshold(Double)
        /// The given number of least similar modules.
        case leastSimilar(Int)
    }

    /// Projects the drifting LoRA updates of `checkpoint` (which must carry them as
    /// adapters over its weights, W_aligned) against `unaligned`'s weights, in place.
    /// Returns one decision per adapted module, in path order.
    public static func project(_ checkpoint: inout Checkpoint, unaligned: Checkpoint, selection: Selection = .threshold(defaultThreshold),
                               source: String) throws(CheckpointError) -> [Decision] {
        guard var adapters = checkpoint.adapters, !adapters.groups.isEmpty else {
            throw .invalidValue(file: source, dataset: "/adapters", reason: "no LoRA adapters to project")
        }
        var decisions: [Decision] = [], projections: [Tensor] = []
        for (path, group) in adapters.groups.sorted(by: { $0.key < $1.key }) {
            let object = "/adapters/\(path)"
            guard let a = group.tensors["A"] else { throw .missingDataset(file: source, dataset: object + "/A") }
            guard let b = group.tensors["B"] else { throw .missingDataset(file: source, dataset: object + "/B") }
            let key = path + ".weight"
            guard let aligned = checkpoint.weights[key] else { throw .missingDataset(file: source, dataset: "/weights/\(key)") }
            guard let base = unaligned.weights[key], base.shape == aligned.shape else {
                throw .shapeMismatch(file: source, dataset: "/weights/\(key) of the unaligned model", expected: aligned.shape,
                                     found: unaligned.weights[key]?.shape ?? [])
            }
            let (similarity, projectedB) = project(a: a, b: b, alignment: difference(aligned, base))
            decisions.append(Decision(path: path, similarity: similarity, projected: false))
            projections.append(projectedB)
        }
        let chosen: Set<Int>
        switch selection {
        case let .threshold(t): chosen = Set(decisions.indices.filter { decisions[$0].similarity < t })
        case let .leastSimilar(n): chosen = Set(decisions.indices.sorted { decisions[$0].similarity < decisions[$1].similarity }.prefix(n))
        }
        for i in chosen {
            decisions[i].projected = true
            adapters.groups[decisions[i].path]?.tensors["B"] = projections[i]
        }
        checkpoint.adapters = adapters
        return decisions
    }

    /// cos(B · A, C · B · A) and C · B for one module (the scale s cancels).
    /// - a: `[r, in]`; b: `[out, r]`; v: the alignment matrix `[out, in]`.
    static func project(a: Tensor, b: Tensor, alignment v: Tensor) -> (similarity: Double, projectedB: Tensor) {
        let r = a.shape[0], inF = a.shape[1], outF = b.shape[0]
        precondition(b.shape == [outF, r] && v.shape == [outF, inF], "SafeLoRA: A \(a.shape), B \(b.shape), V \(v.shape)")
        let norm = Double(frobenius(v))
        let vb = Tensor(zeros: [inF, r]), cb = Tensor(zeros: [outF, r])
        if norm > 0 {
            BLAS.gemm(transA: true, m: inF, n: r, k: outF, a: v.data, b: b.data, c: vb.data)
            BLAS.gemm(m: outF, n: r, k: inF, alpha: Float(1 / norm), a: v.data, b: vb.data, c: cb.data)
        }
        let update = Tensor(zeros: [outF, inF]), projected = Tensor(zeros: [outF, inF])
        BLAS.gemm(m: outF, n: inF, k: r, a: b.data, b: a.data, c: update.data)
        BLAS.gemm(m: outF, n: inF, k: r, a: cb.data, b: a.data, c: projected.data)
        let updateNorm = Double(frobenius(update)), projectedNorm = Double(frobenius(projected))
        guard updateNorm > 0 else { return (1, cb) }
        guard projectedNorm > 0 else { return (0, cb) }
        var dot = 0.0
        for i in 0..<update.count { dot += Double(update.data[i]) * Double(projected.data[i]) }
        return (dot / (updateNorm * projectedNorm), cb)
    }

    static func difference(_ x: Tensor, _ y: Tensor) -> Tensor {
        let d = Tensor(zeros: x.shape)
        for i in 0..<x.count { d.data[i] = x.data[i] - y.data[i] }
        return d
    }

    static func frobenius(_ t: Tensor) -> Float {
        var s: Double = 0
        for i in 0..<t.count { s += Double(t.data[i]) * Double(t.data[i]) }
        return Float(s.squareRoot())
    }
}
