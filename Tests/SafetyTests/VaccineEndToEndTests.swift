import Checkpoints
import Engine
import Foundation
import Models
@testable import Safety
import Testing
import TestSupport
import Training

/// The trainer-backed paths on a tiny checkpoint: variants, gate, purification.
@Suite("BD-VAX end to end")
struct VaccineEndToEndTests {
    static let clean = VaccineFixtures.cleanPairs.map { CleanSample(prompt: $0.prompt, completion: $0.completion) }

    static func tinySettings() -> VariantSettings {
        var v = VariantSettings()
        v.pairs = 2
        v.steps = 2
        v.batchSize = 2
        v.seqLen = 32
        v.cleanPerVariant = 4
        v.poisonPerVariant = 2
        v.threads = 1
        return v
    }

    @Test func verifyFineTunesVariantsAndDecides() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let parent = try VaccineFixtures.checkpoint(seed: 1)
        var child = try VaccineFixtures.checkpoint(seed: 1, parent: parent)
        var rng = SeededRandom(seed: 3)
        for (name, t) in child.weights where name.contains("mlp") {
            let copy = t.copy()
            for i in 0..<copy.count { copy.data[i] += 0.01 * rng.normal() }
            child.weights[name] = copy
        }
        let childURL = dir.appendingPathComponent("child.h5"), parentURL = dir.appendingPathComponent("parent.h5")
        try child.write(to: childURL)
        try parent.write(to: parentURL)
        var configuration = GateConfiguration()
        configuration.variants = Self.tinySettings()
        var lines: [String] = []
        let report = Gate(configuration: configuration).verify(childURL, reference: parentURL, clean: Self.clean,
                                                               workDirectory: dir.appendingPathComponent("work")) { lines.append($0) }
        #expect(report.error == nil, "\(report.reason)")
        #expect(report.statistic != nil && report.threshold != nil)
        #expect(report.calibration?.cleanShares.count == 2)
        #expect(report.layers.count == 4)  // 2 layers × (mlp, attn)
        // Two variant lines, then the direction stage's skip: this parent carries no directions.
        #expect(lines.count == 3 && lines[0].contains("variant 1/2") && lines[2].contains("direction stage: skipped"), "\(lines)")
        #expect(report.directionSkipped?.contains("no safety directions") == true)
        // The scratch folders of the variants are gone.
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("work").path)) ?? []
        #expect(left.isEmpty)
    }

    /// The adapter-only file of a fine-tune of an adapter checkpoint (`adapters.h5` of a
    /// fine-tune of the aligned SmolLM2) is purified on its parent, merged as it trained on
    /// it: the same channels and the same purified weights as its full file. A parent of
    /// other weights is refused.
    @Test func anAdapterOnlyCheckpointIsPurifiedOnItsParent() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (parent, child) = try VaccineFixtures.adapterParentAndChild()
        let parentURL = dir.appendingPathComponent("parent.h5"), otherURL = dir.appendingPathComponent("other.h5")
        let fullURL = dir.appendingPathComponent("model.h5"), smallURL = dir.appendingPathComponent("adapters.h5")
        try parent.write(to: parentURL)
        try VaccineFixtures.checkpoint(seed: 9).write(to: otherURL)
        try child.write(to: fullURL)
        try child.adapterOnly().write(to: smallURL)
        var settings = PurifierSettings()
        settings.variants = Self.tinySettings()
        settings.fluencySamples = 4
        settings.fluencyEpochs = 1
        let purifier = Purifier(settings: settings)
        func purified(_ url: URL, base: URL?) throws -> (PurificationReport, Checkpoint) {
            let out = dir.appendingPathComponent("purified-\(url.lastPathComponent)")
            let report = try purifier.purify(url, clean: Self.clean, output: out, base: base, workDirectory: dir.appendingPathComponent("work"))
            return (report, try Checkpoint.read(from: out))
        }
        let (fullReport, fromFull) = try purified(fullURL, base: nil)
        let (smallReport, fromSmall) = try purified(smallURL, base: parentURL)
        #expect(smallReport.mode == .adapters && smallReport.channels == fullReport.channels)
        #expect(fromSmall.weights.mapValues(\.scalars) == fromFull.weights.mapValues(\.scalars))
        #expect(throws: VaccineError.self) { try purified(smallURL, base: otherURL) }
    }

    @Test func purifierWritesANeutralisedCheckpointWithItsProvenance() throws {
        let dir = try VaccineFixtures.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let suspect = try VaccineFixtures.checkpoint(seed: 2)
        let url = dir.appendingPathComponent("suspect.h5"), out = dir.appendingPathComponent("out/purified.h5")
        try suspect.write(to: url)
        var settings = PurifierSettings()
        settings.variants = Self.tinySettings()
        settings.fluencySamples = 4
        settings.fluencyEpochs = 1
        settings.tau = 0.125
        settings.fluencyLearningRate = 1e-5
        let report = try Purifier(settings: settings).purify(url, clean: Self.clean, output: out, workDirectory: dir.appendingPathComponent("work"))
        #expect(report.mode == .weights && report.tau == 0.125)
        #expect(report.channels == 4)  // ⌈0.125 · 16⌉ = 2 per layer, MLP only
        #expect(report.signature.entries.allSatisfy { $0.module == .mlp })
        #expect(report.poisons.count == 2 && report.fluencySteps == 2)
        let purified = try Checkpoint.read(from: out)
        #expect(purified.provenance?.parentSHA256 == suspect.weightsSHA256)
        // A selected channel's gate row was redrawn; an unselected one kept (fluency lr 1e-5 moves it only slightly).
        let entry = try #require(report.signature.entries.first)
        let name = "model.layers.\(entry.layer).mlp.gate_proj.weight"
        let before = try #require(suspect.weights[name]).scalars, after = try #require(purified.weights[name]).scalars
        let width = 8, j = entry.units[0]
        func change(_ row: Int) -> Float {
            var m: Float = 0
            for c in 0..<width { m = max(m, abs(after[row * width + c] - before[row * width + c])) }
            return m
        }
        let other = (0..<16).first { !entry.units.contains($0) } ?? 0
        let moved = change(j), kept = change(other)
        #expect(moved > 10 * kept)
    }
}
