import Engine
import Foundation
import Testing
@testable import Checkpoints

/// The shipped aligned SmolLM2 (`checkpoints/smollm2-aligned.h5`, made by
/// `scripts/build-aligned-model`): small, complete, and bound to the pinned base.
@Suite("The shipped aligned SmolLM2", .enabled(if: SmolLM2Reference.available, "the base model is not fetched (scripts/setup)"))
struct AlignedModelTests {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("checkpoints/smollm2-aligned.h5")

    @Test func isAnAdapterOnlyCheckpointWithEverySafetySection() throws {
        let size = try #require(try FileManager.default.attributesOfItem(atPath: Self.url.path)[.size] as? Int)
        #expect(size <= 30_000_000, "\(size) bytes")
        let c = try Checkpoint.read(from: Self.url)
        #expect(c.isAdapterOnly && c.weights.isEmpty)
        #expect(c.adapters.map { !$0.groups.isEmpty } == true)
        #expect(c.addedRows?.tensors["model.embed_tokens.weight"]?.shape == [1, c.config.hiddenSize])
        let signal = try #require(c.signal)
        #expect(signal.attributes["cls_token"] == .string("[CLS]") && signal.attributes["guard_threshold"] != nil)
        #expect(c.units.map { !$0.layers.isEmpty } == true)
        #expect(c.directions != nil)
        let regime = try #require(c.provenance?.regime)
        #expect(regime.base == "smollm2")
    }

    @Test func loadsOnTheCachedBaseAndRefusesAnyOther() throws {
        // Loading attaches the cached base (its weights digest must be the recorded one).
        let bundle = try ModelBundle.load(Self.url)
        let base = try SmolLM2Reference.checkpoint.get()
        #expect(bundle.model.config.vocabSize == base.config.vocabSize + 1 && bundle.checkpoint.signal != nil)

        var tampered = try Checkpoint.read(from: Self.url)
        tampered.baseSHA256 = String(repeating: "0", count: 64)
        #expect(throws: CheckpointError.self) { try tampered.attaching(to: base, source: Self.url.path) }
    }
}
