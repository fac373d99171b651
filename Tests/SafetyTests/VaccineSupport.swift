import Checkpoints
import Engine
import Foundation
import Models
@testable import Safety
import Testing
import TestSupport

/// Synthetic channel updates for the BD-VAX tests.
extension VaccineFixtures {
    /// Synthetic evidence: `pairs` variant pairs over `layers` blocks of `units` MLP channels
    /// (width 6) where the backdoor channels `planted` move far and in one direction, other
    /// channels a little at random; clean updates are diffuse, backdoored ones concentrated.
    static func evidence(pairs: Int, layers: Int, units: Int, planted: Set<Int>, seed: UInt64) -> VariantEvidence {
        var rng = SeededRandom(seed: seed)
        let width = 6
        let direction = (0..<width).map { _ in rng.normal() }
        func block(_ layer: Int, _ f: (Int, Int) -> Float) -> ChannelUpdates.Block {
            ChannelUpdates.Block(layer: layer, module: .mlp, units: units, width: width,
                                 values: (0..<(units * width)).map { f($0 / width, $0 % width) })
        }
        var deltas: [ChannelUpdates] = [], clean: [ChannelUpdates] = [], bd: [ChannelUpdates] = []
        for _ in 0..<pairs {
            deltas.append(ChannelUpdates(blocks: (0..<layers).map { l in
                block(l) { j, c in planted.contains(j) ? 3 * direction[c] + 0.1 * rng.normal() : 0.3 * rng.normal() }
            }))
            clean.append(ChannelUpdates(blocks: (0..<layers).map { l in block(l) { _, _ in rng.normal() } }))
            bd.append(ChannelUpdates(blocks: (0..<layers).map { l in
                block(l) { j, c in rng.normal() + (planted.contains(j) ? 6 * direction[c] : 0) }
            }))
        }
        var e = VariantEvidence(deltas: deltas, cleanEnergies: clean.map(\.energies), backdooredEnergies: bd.map(\.energies))
        e.cleanUpdates = clean
        e.backdooredUpdates = bd
        return e
    }

    /// An update over the same blocks: noise everywhere, plus `strength` times the planted
    /// direction of `evidence` (its mean Δ) on `planted` channels.
    static func update(like evidence: VariantEvidence, planted: Set<Int>, strength: Float, seed: UInt64) throws -> ChannelUpdates {
        var rng = SeededRandom(seed: seed)
        let direction = try #require(ChannelUpdates.mean(evidence.deltas))
        return ChannelUpdates(blocks: direction.blocks.map { b in
            var out = b
            for k in out.values.indices { out.values[k] = rng.normal() + (planted.contains(k / b.width) ? strength * b.values[k] : 0) }
            return out
        })
    }
}
