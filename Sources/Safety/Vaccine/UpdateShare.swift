/// How much of an update falls on signature channels: Σ_{j ∈ signature} ‖u_j‖² / Σ_j ‖u_j‖²,
/// over all channels of the signature's modules (per layer, and over the whole model).
/// For an update spread evenly the share is about τ; a backdoor learnt in the signature
/// channels pushes it up.
public struct UpdateShare: Sendable, Equatable, Codable {
    /// Share of one module of one layer.
    public struct Layer: Sendable, Equatable, Codable {
        public var layer: Int
        public var module: UnitModule
        public var share: Double
        /// Update energy of the block (Σ_j ‖u_j‖²).
        public var energy: Double
    }

    /// Share over the whole model (0 when the update is zero on these modules).
    public var share: Double
    /// Total update energy on the signature's modules.
    public var energy: Double
    public var layers: [Layer]

    /// The share of `energies` (per block, as `ChannelUpdates.energies` orders them) on `signature`.
    public init(energies: [[Double]], blocks: [ChannelUpdates.Block], signature: Signature) {
        var on = 0.0, all = 0.0
        layers = []
        for entry in signature.entries {
            guard let b = blocks.firstIndex(where: { $0.layer == entry.layer && $0.module == entry.module }) else { continue }
            let e = energies[b]
            let total = e.reduce(0, +)
            let selected = entry.units.reduce(0.0) { $0 + ($1 < e.count ? e[$1] : 0) }
            layers.append(Layer(layer: entry.layer, module: entry.module, share: total > 0 ? selected / total : 0, energy: total))
            on += selected
            all += total
        }
        share = all > 0 ? on / all : 0
        energy = all
    }

    /// The share of `update` on `signature`.
    public init(update: ChannelUpdates, signature: Signature) {
        self.init(energies: update.energies, blocks: update.blocks, signature: signature)
    }
}
