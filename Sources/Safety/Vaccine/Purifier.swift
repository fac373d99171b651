import Checkpoints
import Engine
import Foundation
import Models
import Training

/// Settings of BD-VAX purification.
public struct PurifierSettings: Sendable, Equatable, Codable {
    public var variants = VariantSettings()
    /// Signature size per layer. The paper used 8 % of a 7B model's MLP channels for full
    /// weights and 40 % for adapters; on small models 8 % leaves most of a backdoor in place,
    /// so 40 % for both (docs/gate.md, docs/experiments/tiny-bdvax-experiment.md).
    public var tau = 0.40
    public var lambda = 1.0
    /// Clean samples and epochs of fluency restoration: twice the paper's 200 samples for 5
    /// epochs, which gave back less of the skills that re-initialising costs
    /// (docs/experiments/tiny-bdvax-experiment.md).
    public var fluencySamples = 400
    public var fluencyEpochs = 10
    /// Learning rate of fluency restoration. The paper's 1e-5 hardly moves a small model.
    public var fluencyLearningRate = 2e-4
    /// Seed of re-initialisation and of the fluency fine-tune.
    public var seed: UInt64 = 1

    /// The defaults.
    public init() {}
}

/// What purification did.
public struct PurificationReport: Sendable, Equatable, Codable {
    /// What was neutralised.
    public enum Mode: String, Sendable, Codable {
        /// An adapter checkpoint's LoRA entries, zeroed.
        case adapters
        /// Full-weight channels, re-initialised.
        case weights
    }

    public var mode: Mode
    public var tau: Double
    /// Channels neutralised.
    public var channels: Int
    public var signature: Signature
    public var poisons: [Poison]
    public var fluencySteps: Int
    public var output: String
    public var secondsVariants: Double
    public var secondsTotal: Double
}

/// BD-VAX purification: find the backdoor signature with synthetic variants, neutralise
/// it, then restore fluency with a short fine-tune on clean samples.
public final class Purifier {
    public let settings: PurifierSettings
    /// Called with progress lines.
    public var log: (String) -> Void = { _ in }

    /// A purifier.
    public init(settings: PurifierSettings = .init()) { self.settings = settings }

    /// Purifies the checkpoint at `url` into `output` (a full-weights checkpoint whose
    /// provenance parent is the suspect). An adapter-only checkpoint is attached to its
    /// parent: `base`, else the one its provenance names, checked against the recorded digest
    /// as the gate checks it (an adapter parent such as the aligned SmolLM2 included).
    /// `evidence` reuses variants already fine-tuned from this checkpoint (by the gate).
    public func purify(_ url: URL, clean: [CleanSample], output: URL, base: URL? = nil, workDirectory: URL,
                       evidence reused: VariantEvidence? = nil) throws -> PurificationReport {
        let started = Date()
        let suspect = try SuspectLoader.read(url)
        let parent = suspect.isAdapterOnly ? try SuspectLoader.parent(of: suspect, file: url, reference: base) : nil
        let (bundle, checkpoint) = try SuspectLoader.load(suspect, from: url, base: parent)
        let adapterMode = !(checkpoint.adapters?.groups.isEmpty ?? true)
        let tau = settings.tau
        guard tau > 0, tau <= 1 else { throw VaccineError.invalidSetting(key: "tau", reason: "must lie in (0, 1], got \(tau)") }

        let evidence: VariantEvidence
        if let reused {
            evidence = reused
        } else {
            let factory = try VariantFactory(suspect: bundle, clean: clean, settings: settings.variants, workDirectory: workDirectory)
            factory.log = log
            evidence = try factory.evidence()
        }
        let config = bundle.model.config
        let shape = evidence.statistics.blocks.map(\.shape)
        guard !shape.isEmpty, shape.allSatisfy({ b in
            b.layer < config.numLayers && b.units == (b.module == .mlp ? config.intermediateSize : config.numHeads)
        }) else {
            throw VaccineError.shapeMismatch(file: url.path, reason: "the variants' channels differ from the checkpoint's")
        }
        let scores = SignatureScorer(lambda: settings.lambda).scores(evidence.statistics)
        let signature = Signature(scores: scores, tau: tau, modules: adapterMode ? Set(UnitModule.allCases) : [.mlp])

        // Neutralise on a fresh copy of the suspect.
        let model = try TransformerModel(config: checkpoint.config, weights: checkpoint.weights, trainable: true)
        let channels: Int
        if adapterMode, let adapters = checkpoint.adapters {
            try LoRAGroup.attach(adapters, to: model, source: url.path)
            channels = Neutralizer.zeroAdapters(of: model, signature: signature)
            LoRA.merge(model)
        } else {
            channels = Neutralizer.reinitialize(model, signature: signature, seed: settings.seed)
        }
        log("neutralised \(channels) channels (\(adapterMode ? "adapter entries zeroed" : "re-initialised"), τ = \(tau))")

        // Fluency restoration with the trainer.
        let folder = workDirectory.appendingPathComponent("fluency")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var rng = SeededRandom(seed: settings.seed &+ 17)
        try CleanData.write(VariantFactory.sample(clean, count: min(settings.fluencySamples, clean.count), rng: &rng),
                            to: folder.appendingPathComponent("fluency.jsonl"))
        var v = settings.variants
        v.kind = .full
        let samples = min(settings.fluencySamples, clean.count)
        let steps = max(1, settings.fluencyEpochs * ((samples + v.batchSize - 1) / v.batchSize))
        let setup = try v.trainerSetup(files: [folder.appendingPathComponent("fluency.jsonl")], output: folder.appendingPathComponent("out"),
                                       seed: Int(settings.seed % 1_000_000), steps: steps, learningRate: settings.fluencyLearningRate)
        let trainer = try Trainer(setup: setup, bundle: ModelBundle(model: model, tokenizer: bundle.tokenizer, checkpoint: checkpoint, source: url))
        try trainer.run()
        log("fluency restored: \(steps) steps on \(samples) clean samples")
        var result = trainer.checkpoint(step: steps, includeOptimizer: false)
        result.gate = nil
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        try result.write(to: output)
        return PurificationReport(mode: adapterMode ? .adapters : .weights, tau: tau, channels: channels, signature: signature,
                                  poisons: evidence.poisons, fluencySteps: steps, output: output.path,
                                  secondsVariants: evidence.seconds, secondsTotal: Date().timeIntervalSince(started))
    }
}
