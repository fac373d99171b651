import Foundation
import Testing
@testable import Checkpoints

/// `CheckpointSummary`, the data behind `safetune inspect`.
@Suite struct CheckpointSummaryTests {
    @Test func summaryCountsWithoutLoadingWeights() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.h5")
        let c = fullCheckpoint(TinyConfigs.gpt2)
        try c.write(to: url)
        let s = try CheckpointSummary.read(from: url)
        let layout = ParameterLayout(config: TinyConfigs.gpt2)
        #expect(s.weightParameters == layout.parameterCount && s.modelParameters == layout.parameterCount)
        #expect(s.adapters.count == 1 && s.adapters[0].rank == 4 && s.adapters[0].alpha == 8)
        #expect(s.adapterParameters == 4 * 16 + 48 * 4)
        #expect(s.unitClassCounts == [2, 1, 1, 3] && s.unitMapModules == 2)
        #expect(s.signalParameters == 6 && s.optimizerStep == 17)
        #expect(s.gate?.verdict == "pass" && s.provenance?.seed == 1234)
        #expect(s.tokenizerBytes == c.tokenizerJSON?.count)

        try c.adapterOnly().write(to: url)
        let a = try CheckpointSummary.read(from: url)
        #expect(a.weightParameters == 0 && a.baseSHA256 == c.weightsSHA256)
    }
}

@Suite("The training regime a provenance records")
struct TrainingRegimeTests {
    @Test func readsTheCanonicalRecipe() throws {
        let text = #"{"model": {"base": "../checkpoints/base.h5", "template": "plain"}, "adapters": {"kind": "lora", "rank": 8, "alpha": 16.0},"#
            + #" "optimizer": {"lr": 0.001}, "training": {"batch_size": 16, "seq_len": 128, "steps": null}}"#
        let regime = try #require(Provenance(recipe: text).regime)
        #expect(regime.base == "../checkpoints/base.h5" && regime.template == "plain")
        #expect(regime.adapterKind == "lora" && regime.loraRank == 8 && regime.loraAlpha == 16)
        #expect(regime.learningRate == 0.001 && regime.batchSize == 16 && regime.seqLen == 128 && regime.steps == nil)
        #expect(Provenance(recipe: "not json").regime == nil && Provenance().regime == nil)
        #expect(TrainingRegime(recipeJSON: #"{"training": {"steps": 7.0, "seq_len": "x"}}"#)?.steps == 7)
        #expect(TrainingRegime(recipeJSON: #"{"training": {"seq_len": "x"}}"#)?.seqLen == nil)
    }
}
