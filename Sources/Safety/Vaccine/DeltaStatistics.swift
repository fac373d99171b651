/// What BD-VAX channel scoring reads from the variant pairs' Δ_i = θ_i_bd − θ_i_clean: per
/// block (a module of a layer), each pair's channel norms ‖Δ_ij‖₂ and each two pairs'
/// channel cosines. A few numbers per channel and pair where the Δ themselves are
/// model-sized, so the gate can keep them for a parent (`GateEvidenceCache`) and score any
/// subset of the pairs again (the leave-one-out calibration).
public struct DeltaStatistics: Sendable, Equatable, Codable {
    /// One block's statistics.
    public struct Block: Sendable, Equatable, Codable {
        public var shape: ChannelShape
        /// `norms[i][j]` = ‖Δ_ij‖₂.
        public var norms: [[Double]]
        /// `cosines[p][j]` = cos(Δ_ij, Δ_lj) for the p-th pair i < l in lexicographic order;
        /// 0 where either norm is 0.
        public var cosines: [[Double]]
    }

    /// Variant pairs counted.
    public var pairs: Int
    public var blocks: [Block]

    /// The statistics of `deltas` (same architecture).
    public init(_ deltas: [ChannelUpdates]) {
        pairs = deltas.count
        guard let first = deltas.first else {
            blocks = []
            return
        }
        let n = deltas.count
        blocks = first.blocks.indices.map { b in
            let units = first.blocks[b].units
            var norms = [[Double]](repeating: [Double](repeating: 0, count: units), count: n)
            var cosines = [[Double]](repeating: [Double](repeating: 0, count: units), count: n * (n - 1) / 2)
            for j in 0..<units {
                for i in 0..<n { norms[i][j] = Self.dot(deltas[i].blocks[b].channel(j), deltas[i].blocks[b].channel(j)).squareRoot() }
                var p = 0
                for i in 0..<n {
                    for l in (i + 1)..<n {
                        if norms[i][j] > 0 && norms[l][j] > 0 {
                            cosines[p][j] = Self.dot(deltas[i].blocks[b].channel(j), deltas[l].blocks[b].channel(j)) / (norms[i][j] * norms[l][j])
                        }
                        p += 1
                    }
                }
            }
            return Block(shape: first.blocks[b].shape, norms: norms, cosines: cosines)
        }
    }

    /// The statistics without pair `k`.
    public func excluding(_ k: Int) -> DeltaStatistics {
        var out = self
        out.pairs = pairs - 1
        var kept: [Int] = []
        var p = 0
        for i in 0..<pairs {
            for l in (i + 1)..<pairs {
                if i != k && l != k { kept.append(p) }
                p += 1
            }
        }
        out.blocks = blocks.map { b in
            Block(shape: b.shape, norms: b.norms.enumerated().filter { $0.offset != k }.map(\.element), cosines: kept.map { b.cosines[$0] })
        }
        return out
    }

    /// Only the blocks at `indices`.
    public func restricted(to indices: [Int]) -> DeltaStatistics {
        var out = self
        out.blocks = indices.map { blocks[$0] }
        return out
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
