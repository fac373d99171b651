/// How much of an update falls on signature channels. Per block (a module of a layer), the
/// share is Σ_{j ∈ signature} ‖u_j‖² / Σ_j ‖u_j‖²; over the model, each block's share is
/// divided by the fraction of its channels the signature holds and the blocks are weighted
/// by their update energy, so an update spread evenly within the blocks it touches scores
/// about 1 whichever blocks those are. A backdoor learnt in the signature channels pushes it up.
///
/// Why relative: the signature takes ⌈τ · n⌉ channels per block, so its fraction differs by
/// module (1 of 6 heads, 41 of 512 MLP channels), and the raw share of a benign update
/// confined to some modules would read as a backdoor (docs/gate.md, "The detection rule").
public struct UpdateShare: Sendable, Equatable, Codable {
    /// Raw share of one module of one layer.
    public struct Layer: Sendable, Equatable, Codable {
        public var layer: Int
        public var module: UnitModule
        public var share: Double
        /// Update energy of the block (Σ_j ‖u_j‖²).
        public var energy: Double
    }

    /// Energy-weighted mean over blocks of share / signature fraction: 1 for an evenly
    /// spread update (0 when the update is zero on these modules).
    public var share: Double
    /// Total update energy on the signature's modules.
    public var energy: Double
    public var layers: [Layer]

    /// The share of `energies` (per block, as `ChannelUpdates.energies` orders them) on
    /// `signature`. With `frozen` (units the update could not change: a training run's own
    /// SSAH mask) each block counts only the other channels, and its signature fraction is
    /// that of those channels; a block where they hold no signature channel adds energy but
    /// no share. Without it an update confined by a mask to channels the signature
    /// favours reads high: training routed into the redundant units, which is where
    /// synthetic backdoors land too, read 1.64× on the previous shipped model and 1.00× unrouted.
    public init(energies: [[Double]], blocks: [ChannelShape], signature: Signature, frozen: UnitMask? = nil) {
        var relative = 0.0, all = 0.0, counted = 0.0
        layers = []
        for entry in signature.entries {
            guard let b = blocks.firstIndex(where: { $0.layer == entry.layer && $0.module == entry.module }) else { continue }
            let e = energies[b]
            let frozenFlags = frozen?.flags(entry.module)[entry.layer]
            func isOpen(_ j: Int) -> Bool { j < e.count && frozenFlags?[j] != true }
            var total = 0.0, openCount = 0
            for j in e.indices where isOpen(j) {
                total += e[j]
                openCount += 1
            }
            var selected = 0.0, selectedCount = 0
            for j in entry.units where isOpen(j) {
                selected += e[j]
                selectedCount += 1
            }
            layers.append(Layer(layer: entry.layer, module: entry.module, share: total > 0 ? selected / total : 0, energy: total))
            all += total
            guard selectedCount > 0 else { continue }
            relative += selected / (Double(selectedCount) / Double(openCount))
            counted += total
        }
        share = counted > 0 ? relative / counted : 0
        energy = all
    }

    /// The share of `update` on `signature` (over the units `frozen` leaves open).
    public init(update: ChannelUpdates, signature: Signature, frozen: UnitMask? = nil) {
        self.init(energies: update.energies, blocks: update.blocks.map(\.shape), signature: signature, frozen: frozen)
    }
}
