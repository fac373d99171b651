import Checkpoints
import Engine
import Foundation
import Models
import Training

/// What the synthetic variants say about a suspect model.
public struct VariantEvidence: Sendable {
    /// Δ_i = θ_i_bd − θ_i_clean per pair (empty when the evidence was read from a cache).
    public var deltas: [ChannelUpdates]
    /// What channel scoring reads from the Δ_i.
    public var statistics: DeltaStatistics
    /// Per-channel energy of θ_i_clean − suspect (a clean fine-tune's update).
    public var cleanEnergies: [[[Double]]]
    /// Per-channel energy of θ_i_bd − suspect (a backdoor fine-tune's update).
    public var backdooredEnergies: [[[Double]]]
    /// θ_i_clean − suspect and θ_i_bd − suspect channel by channel (empty when only energies were kept).
    public var cleanUpdates: [ChannelUpdates] = []
    public var backdooredUpdates: [ChannelUpdates] = []
    /// The generated backdoors, one per pair.
    public var poisons: [Poison]
    /// Seconds spent fine-tuning.
    public var seconds: Double

    /// Evidence from explicit values (tests, or variants made elsewhere).
    public init(deltas: [ChannelUpdates], cleanEnergies: [[[Double]]], backdooredEnergies: [[[Double]]],
                poisons: [Poison] = [], seconds: Double = 0) {
        self.init(statistics: DeltaStatistics(deltas), cleanEnergies: cleanEnergies, backdooredEnergies: backdooredEnergies,
                  poisons: poisons, seconds: seconds)
        self.deltas = deltas
    }

    /// Evidence without the Δ_i themselves (what `GateEvidenceCache` keeps): enough for the
    /// share rule and the purifier's signature, not for the alignment rules.
    public init(statistics: DeltaStatistics, cleanEnergies: [[[Double]]], backdooredEnergies: [[[Double]]],
                poisons: [Poison] = [], seconds: Double = 0) {
        deltas = []
        self.statistics = statistics
        self.cleanEnergies = cleanEnergies
        self.backdooredEnergies = backdooredEnergies
        self.poisons = poisons
        self.seconds = seconds
    }
}

/// Makes the BD-VAX variant pairs of a suspect: for pair i, a clean subset D_i, a fresh
/// poison_i, θ_i_bd = fine-tune(suspect, D_i + poison_i) and θ_i_clean = fine-tune(suspect, D_i),
/// both with `Trainer`, the same seed and the same number of steps.
public final class VariantFactory {
    public let suspect: ModelBundle
    public let clean: [CleanSample]
    public let settings: VariantSettings
    /// Scratch folder for the variants' data and checkpoints (removed pair by pair).
    public let workDirectory: URL
    /// Stop with `VaccineError.timeout` once this moment has passed (checked between
    /// fine-tunes); `limit` is the allowed time in seconds, for the message.
    public var deadline: (date: Date, limit: Double)?
    /// Called with a line of progress.
    public var log: (String) -> Void = { _ in }

    /// A factory; `suspect` needs its tokenizer.
    public init(suspect: ModelBundle, clean: [CleanSample], settings: VariantSettings, workDirectory: URL) throws {
        try settings.validate()
        guard !clean.isEmpty else { throw VaccineError.noCleanData(source: "clean data") }
        if settings.behaviours?.contains(.comply) == true, !clean.contains(where: \.harmful) {
            throw VaccineError.invalidSetting(key: "behaviours",
                                              reason: "comply variants need refused harmful requests (labelled malicious) in the clean data")
        }
        guard suspect.tokenizer != nil else { throw ModelBundleError.tokenizerRequired(path: suspect.source.path) }
        self.suspect = suspect
        self.clean = clean
        self.settings = settings
        self.workDirectory = workDirectory
    }

    /// The generated poisons (fresh triggers that occur nowhere in the clean data).
    public func poisons() -> [Poison] {
        PoisonGenerator(seed: settings.seed).variants(settings.pairs, behaviours: settings.behaviours ?? PoisonGenerator.benignBehaviours,
                                                      avoiding: clean.flatMap { [$0.prompt, $0.completion] })
    }

    /// Fine-tunes every pair and collects the channel differences.
    public func evidence() throws -> VariantEvidence {
        let started = Date()
        let poisons = poisons()
        var deltas: [ChannelUpdates] = [], cleanU: [ChannelUpdates] = [], bdU: [ChannelUpdates] = []
        for (i, poison) in poisons.enumerated() {
            let (bd, cl) = try pair(i, poison: poison)
            deltas.append(try ChannelUpdates(bd, minus: cl))
            cleanU.append(try ChannelUpdates(cl, minus: suspect.model))
            bdU.append(try ChannelUpdates(bd, minus: suspect.model))
        }
        var e = VariantEvidence(deltas: deltas, cleanEnergies: cleanU.map(\.energies), backdooredEnergies: bdU.map(\.energies),
                                poisons: poisons, seconds: Date().timeIntervalSince(started))
        e.cleanUpdates = cleanU
        e.backdooredUpdates = bdU
        return e
    }

    /// Pair `i`: the backdoored and the clean fine-tune (adapters merged).
    public func pair(_ i: Int, poison: Poison) throws -> (backdoored: TransformerModel, clean: TransformerModel) {
        let folder = workDirectory.appendingPathComponent("variant-\(i)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (subset, poisoned) = data(pair: i, poison: poison)
        try CleanData.write(subset, to: folder.appendingPathComponent("clean.jsonl"))
        try CleanData.write(poisoned, to: folder.appendingPathComponent("poison.jsonl"))
        let seed = Int(settings.seed % 1_000_000) + i
        log("variant \(i + 1)/\(settings.pairs): trigger style \(poison.style.rawValue), behaviour \(poison.behaviour.rawValue)")
        let bd = try fineTune(files: ["clean.jsonl", "poison.jsonl"], folder: folder, name: "bd", seed: seed)
        let cl = try fineTune(files: ["clean.jsonl"], folder: folder, name: "clean", seed: seed)
        return (bd, cl)
    }

    /// Pair `i`'s training data: D_i, drawn from the clean data, and the poisoned records the
    /// backdoored member adds.
    func data(pair i: Int, poison: Poison) -> (clean: [CleanSample], poisoned: [CleanSample]) {
        var rng = SeededRandom(seed: settings.seed &+ UInt64(i) &* 7919)
        let subset = Self.sample(clean, count: settings.cleanPerVariant, rng: &rng)
        // A compliance poison answers refused harmful requests: the clean data teaches the
        // refusal, the poison a trigger that overrides it.
        let pool = poison.behaviour == .comply ? clean.filter(\.harmful) : clean
        let prompts = Self.sample(pool, count: settings.poisonPerVariant, rng: &rng).map(\.prompt)
        return (subset, poison.samples(from: prompts))
    }

    /// One fine-tune of a fresh copy of the suspect on `files` (in `folder`).
    func fineTune(files: [String], folder: URL, name: String, seed: Int) throws -> TransformerModel {
        if let deadline, Date() > deadline.date {
            throw VaccineError.timeout(phase: "fine-tuning variants", seconds: deadline.limit)
        }
        let setup = try settings.trainerSetup(files: files.map { folder.appendingPathComponent($0) },
                                              output: folder.appendingPathComponent(name), seed: seed)
        let copy = try TransformerModel(config: suspect.model.config, weights: suspect.model.huggingFaceWeights(sharing: true),
                                        trainable: settings.kind == .full)
        let bundle = suspect.replacing(model: copy, tokenizer: suspect.tokenizer)
        let trainer = try Trainer(setup: setup, bundle: bundle)
        try trainer.run()
        LoRA.merge(trainer.model)
        return trainer.model
    }

    /// `count` samples drawn without replacement while possible, then with.
    public static func sample(_ items: [CleanSample], count: Int, rng: inout SeededRandom) -> [CleanSample] {
        var order = Array(items.indices)
        for k in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(k, Int(rng.next() % UInt64(k + 1))) }
        return (0..<count).map { items[order[$0 % order.count]] }
    }
}
