import Checkpoints
import Engine
@testable import Experiments
import Models
import Testing

@Suite struct SafeLoRATests {
    static let path = "model.layers.0.mlp.down_proj"

    /// V `[4, 3]` = e0 · [1, 1, 1]: rank one, column space e0, ‖V‖_F = √3, so C · e0 = √3 · e0.
    static let alignment = Tensor(shape: [4, 3], scalars: [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    static let a = Tensor(shape: [1, 3], scalars: [1, 2, 3])

    @Test func anUpdateInsideTheAlignmentSubspaceIsLeftAlone() {
        let b = Tensor(shape: [4, 1], scalars: [1, 0, 0, 0])
        let (similarity, projected) = SafeLoRA.project(a: Self.a, b: b, alignment: Self.alignment)
        #expect(abs(similarity - 1) < 1e-6)
        Self.expect(projected, [Float(3).squareRoot(), 0, 0, 0])
    }

    @Test func anUpdateOutsideItProjectsToNothing() {
        let b = Tensor(shape: [4, 1], scalars: [0, 0, 1, -1])
        let (similarity, projected) = SafeLoRA.project(a: Self.a, b: b, alignment: Self.alignment)
        #expect(similarity == 0)
        #expect(projected.scalars == [0, 0, 0, 0])
    }

    @Test func aZeroUpdateIsNotADrift() {
        let (similarity, _) = SafeLoRA.project(a: Self.a, b: Tensor(zeros: [4, 1]), alignment: Self.alignment)
        #expect(similarity == 1)
    }

    static func expect(_ t: Tensor?, _ values: [Float]) {
        #expect(t?.scalars.count == values.count)
        for (x, y) in zip(t?.scalars ?? [], values) { #expect(abs(x - y) < 1e-6) }
    }

    /// A checkpoint whose two modules drift by different amounts, over an unaligned base.
    static func checkpoints() -> (child: Checkpoint, unaligned: Checkpoint) {
        let config = ModelConfig(family: .llama, vocabSize: 50, hiddenSize: 8, numLayers: 2, numHeads: 2, numKVHeads: 1,
                                 intermediateSize: 16, maxPositions: 32)
        let paths = [path, "model.layers.1.mlp.down_proj"]
        var aligned: [String: Tensor] = [:], base: [String: Tensor] = [:], groups: [String: TensorGroup] = [:]
        for (i, p) in paths.enumerated() {
            aligned[p + ".weight"] = alignment
            base[p + ".weight"] = Tensor(zeros: [4, 3])
            // Layer 0 mostly inside the subspace, layer 1 mostly outside.
            let b = i == 0 ? Tensor(shape: [4, 1], scalars: [1, 0, 0.2, 0]) : Tensor(shape: [4, 1], scalars: [0.2, 0, 1, 0])
            groups[p] = TensorGroup(tensors: ["A": a, "B": b], attributes: ["rank": .int(1), "alpha": .double(2)])
        }
        return (Checkpoint(config: config, weights: aligned, adapters: TensorGroup(groups: groups)),
                Checkpoint(config: config, weights: base))
    }

    @Test func onlyTheDriftingModulesAreProjected() throws {
        var (child, unaligned) = Self.checkpoints()
        let decisions = try SafeLoRA.project(&child, unaligned: unaligned, selection: .threshold(0.5), source: "child.h5")
        #expect(decisions.map(\.projected) == [false, true])
        #expect(decisions[0].similarity > 0.9 && decisions[1].similarity < 0.5)
        #expect(child.adapters?.groups[Self.path]?.tensors["B"]?.scalars == [1, 0, 0.2, 0])
        // C · B = V · (Vᵀ B) / ‖V‖_F = e0 · 0.6 / √3.
        Self.expect(child.adapters?.groups["model.layers.1.mlp.down_proj"]?.tensors["B"], [0.6 / Float(3).squareRoot(), 0, 0, 0])

        var again = Self.checkpoints().child
        let least = try SafeLoRA.project(&again, unaligned: unaligned, selection: .leastSimilar(1), source: "child.h5")
        #expect(least.map(\.projected) == [false, true])
    }

    @Test func aMissingWeightIsNamed() {
        var (child, unaligned) = Self.checkpoints()
        unaligned.weights[Self.path + ".weight"] = nil
        let missing = #expect(throws: CheckpointError.self) { try SafeLoRA.project(&child, unaligned: unaligned, source: "child.h5") }
        #expect(missing?.description.hasPrefix("child.h5") == true)
        #expect(missing?.description.contains("/weights/\(Self.path).weight of the unaligned model") == true)
        var bare = Self.checkpoints().child
        bare.adapters = nil
        let none = #expect(throws: CheckpointError.self) { try SafeLoRA.project(&bare, unaligned: unaligned, source: "child.h5") }
        #expect(none?.description.contains("no LoRA adapters to project") == true)
    }
}
