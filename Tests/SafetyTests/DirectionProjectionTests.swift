import Engine
import Models
@testable import Safety
import TestSupport
import Testing

/// Purification by projection: the update loses exactly its components along the span of
/// the parent's directions, on the side each projection writes or reads the residual stream.
@Suite struct DirectionProjectionTests {
    /// A random update on every projection, and two directions that are neither orthogonal
    /// nor equal: after the projection the update neither writes nor reads the span (both
    /// shares vanish for each direction), and its part orthogonal to the span is untouched.
    @Test func theUpdateLosesItsComponentsAlongTheDirections() throws {
        let (parent, child) = try DirectionStageTests.models()
        let d = VaccineFixtures.llama.hiddenSize
        var rng = SeededRandom(seed: 5)
        for b in child.blocks {
            for linear in b.attention.linears + [b.mlp.down] + Self.inputs(b.mlp) {
                DirectionStageTests.add(linear) { _, _ in 0.01 * rng.normal() }
            }
        }
        var r1 = [Float](repeating: 0, count: d), r2 = [Float](repeating: 0, count: d)
        r1[1] = 1
        r2[1] = 0.6
        r2[3] = 0.8
        let directions = SafetyDirections(directions: [r1, r2], separation: [1, 1])
        let untouched = try TransformerModel(config: VaccineFixtures.llama, weights: child.huggingFaceWeights(), trainable: false)
        let removed = try DirectionProjection.apply(child: child, parent: parent, directions: directions)
        #expect(removed > 0 && removed < 0.5, "removed \(removed)")
        for r in [r1, r2] {
            let s = try DirectionShift(child: child, parent: parent, directions: DirectionStageTests.directions(r, layers: 2))
            #expect(s.write < 1e-8 && s.read < 1e-8, "write \(s.write), read \(s.read)")
        }
        // Rows of down_proj other than 1 and 3 (the span's coordinates) are as they were.
        let after = child.blocks[0].mlp.down.weight.value, before = untouched.blocks[0].mlp.down.weight.value
        let cols = child.blocks[0].mlp.down.inFeatures
        for i in [0, 2, 4, 7] { for j in 0..<cols { #expect(after.data[i * cols + j] == before.data[i * cols + j]) } }
        // An update already off the span loses nothing.
        #expect(try DirectionProjection.apply(child: child, parent: parent, directions: directions) < 1e-10)
    }

    @Test func theBasisIsOrthonormalAndDropsDependentDirections() {
        let basis = DirectionProjection.basis([[1, 0, 0], [1, 1, 0], [2, 1, 0], [0, 0, 3]], dimension: 3)
        #expect(basis.count == 9)
        for a in 0..<3 {
            for b in 0..<3 {
                let dot = (0..<3).reduce(Float(0)) { $0 + basis[a * 3 + $1] * basis[b * 3 + $1] }
                #expect(abs(dot - (a == b ? 1 : 0)) < 1e-6)
            }
        }
    }

    static func inputs(_ mlp: MLP) -> [Linear] {
        switch mlp.form {
        case let .gelu(fc): return [fc]
        case let .swiglu(gate, up): return [gate, up]
        }
    }
}
