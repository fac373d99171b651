/// The backdoor signature: the top-τ channels of each module in each layer by BD-VAX score.
public struct Signature: Sendable, Equatable, Codable {
    /// The selected channels of one module of one layer, best first.
    public struct Entry: Sendable, Equatable, Codable {
        public var layer: Int
        public var module: UnitModule
        public var units: [Int]
        /// Channels in the module.
        public var total: Int
        /// Mean score of the selected channels and of all channels.
        public var meanSelected: Double
        public var meanAll: Double
    }

    /// Fraction of each module's channels selected per layer.
    public var tau: Double
    public var entries: [Entry]

    /// Selects the top ⌈τ · count⌉ channels (at least one) of each scored block of `modules`.
    public init(scores: [ChannelScores], tau: Double, modules: Set<UnitModule> = Set(UnitModule.allCases)) {
        self.tau = tau
        entries = scores.filter { modules.contains($0.module) }.map { s in
            let count = s.total.count
            let k = min(count, max(1, Int((tau * Double(count)).rounded(.up))))
            // Ties broken by channel index so the selection is deterministic.
            let order = s.total.indices.sorted { s.total[$0] != s.total[$1] ? s.total[$0] > s.total[$1] : $0 < $1 }
            let top = Array(order.prefix(k))
            return Entry(layer: s.layer, module: s.module, units: top, total: count,
                         meanSelected: top.reduce(0) { $0 + s.total[$1] } / Double(max(k, 1)),
                         meanAll: s.total.reduce(0, +) / Double(max(count, 1)))
        }
    }

    /// Channels selected in `module` of `layer`.
    public func units(layer: Int, module: UnitModule) -> [Int] {
        entries.first { $0.layer == layer && $0.module == module }?.units ?? []
    }

    /// Number of selected channels.
    public var count: Int { entries.reduce(0) { $0 + $1.units.count } }
}

/// Unit modules are stored by name in signatures and gate reports.
extension UnitModule: Codable {}
