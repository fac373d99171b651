import Checkpoints
import Engine
import Foundation
import Models
import Tokenizers
import Training

/// How the BD-VAX synthetic variants are fine-tuned (the paper leaves poison size, steps
/// and LoRA versus full fine-tuning open; these defaults work on SafeTune's small models
/// and keep a verify to minutes on a laptop CPU).
public struct VariantSettings: Sendable, Equatable, Codable {
    /// Which weights a variant fine-tune changes.
    public enum Kind: String, Sendable, Equatable, Codable, CaseIterable {
        /// Every weight (default: small models learn a backdoor fastest this way).
        case full
        /// LoRA on every attention and MLP projection, merged afterwards.
        case lora
    }

    /// Variant pairs N (the paper uses 6–7).
    public var pairs = 6
    public var kind = Kind.full
    /// Optimizer steps per fine-tune (both members of a pair use the same).
    public var steps = 40
    public var batchSize = 8
    public var seqLen = 96
    /// Learning rate; nil picks 5e-4 for full fine-tuning and 2e-3 for LoRA.
    public var learningRate: Double?
    /// Learning-rate schedule; nil is constant (the variants'; a calibration fine-tune takes
    /// the checkpoint's own, since a decaying rate changes where an update ends up).
    public var schedule: LearningRateSchedule?
    /// Clean samples per variant (D_i, drawn without replacement when there are enough).
    public var cleanPerVariant = 96
    /// Poisoned samples added to D_i in the backdoored member.
    public var poisonPerVariant = 32
    public var loraRank = 8
    public var loraAlpha = 16.0
    /// LoRA target patterns (nil: every block projection, `loraTargets`).
    public var loraTargets: [String]?
    /// What the variants' poisons make a model do, in order (nil: the gate's,
    /// `PoisonGenerator.benignBehaviours`). `comply` poisons refused harmful requests of the
    /// clean data, so it needs some.
    public var behaviours: [PoisonBehaviour]?
    /// Seed of data subsets, triggers and training.
    public var seed: UInt64 = 1
    /// Chat template name (`auto`: the one the tokenizer implies).
    public var template = "auto"
    /// Compute threads (0: all cores).
    public var threads = 0

    /// The defaults.
    public init() {}

    /// The regime of the clean fine-tunes that calibrate the gate's later stages when the
    /// checkpoint's own regime is not known: 200 full-weight steps at lr 1e-3 on 400 clean
    /// samples, the regime of the shipped backdoor experiment's children.
    public static var childRegime: VariantSettings {
        var regime = VariantSettings()
        regime.steps = 200
        regime.learningRate = 1e-3
        regime.cleanPerVariant = 400
        return regime
    }

    /// These settings with what a checkpoint's provenance says about how it was trained:
    /// from its recipe (canonical JSON) the adapter kind, rank and alpha, learning rate and
    /// its schedule, batch, sequence length and chat template; the steps it took (recorded since this
    /// version; else the recipe's fixed step count, if any). What the provenance lacks stays
    /// as it is; `applied` lists what was taken, for the log.
    public func following(provenance: Provenance?) -> (settings: VariantSettings, applied: [String]) {
        var s = self, applied: [String] = []
        if let steps = provenance?.steps {
            s.steps = Int(steps)
            applied.append("\(steps) steps")
        }
        guard let regime = provenance?.regime else { return (s, applied) }
        if let kind = regime.adapterKind.flatMap(Kind.init(rawValue:)) {
            s.kind = kind
            applied.append("kind \(kind.rawValue)")
        }
        if s.kind == .lora, let rank = regime.loraRank, let alpha = regime.loraAlpha {
            (s.loraRank, s.loraAlpha) = (rank, alpha)
            applied.append("rank \(rank), alpha \(alpha)")
        }
        // Targets that leave some projection of the model's family out (attention only, say):
        // a clean fine-tune that also moves the others is not the checkpoint's kind of update.
        if s.kind == .lora, let targets = regime.loraTargets, !Self.coversEveryProjection(targets) {
            s.loraTargets = targets
            applied.append("targets \(targets.joined(separator: ", "))")
        }
        if let lr = regime.learningRate {
            s.learningRate = lr
            applied.append("lr \(lr)")
        }
        if let kind = regime.scheduleKind.flatMap(LearningRateSchedule.Kind.init(rawValue:)) {
            s.schedule = LearningRateSchedule(kind, warmupSteps: regime.warmupSteps ?? 0)
            applied.append("\(kind.rawValue) schedule, \(regime.warmupSteps ?? 0) warm-up steps")
        }
        if let batch = regime.batchSize, let seqLen = regime.seqLen {
            (s.batchSize, s.seqLen) = (batch, seqLen)
            applied.append("batch \(batch) × \(seqLen)")
        }
        if provenance?.steps == nil, let steps = regime.steps {
            s.steps = steps
            applied.append("\(steps) steps")
        }
        if let template = regime.template {
            s.template = template
            applied.append("template \(template)")
        }
        return (s, applied)
    }

    /// The chat template `template` names, read as a recipe reads it (`plain` is the
    /// instruction template), so that probes are rendered the way the fine-tunes saw them.
    public func chatTemplate(tokenizer: Tokenizer) throws -> ChatTemplate {
        try ChatTemplate.named(template, tokenizer: tokenizer)
    }

    /// LoRA targets of a variant fine-tune: every block projection of either family.
    static let loraTargets = (llamaProjections + gpt2Projections).compactMap { TargetPattern(validating: $0) }
    private static let llamaProjections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    private static let gpt2Projections = ["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"]

    /// Whether `targets` name every block projection of one family.
    static func coversEveryProjection(_ targets: [String]) -> Bool {
        let set = Set(targets)
        return set.isSuperset(of: llamaProjections) || set.isSuperset(of: gpt2Projections)
    }

    /// One fine-tune in this regime: AdamW without weight decay, gradients clipped at 1, the
    /// schedule (constant when nil), no evaluation and no periodic checkpoints, on the JSONL
    /// `files`; `steps` and `learningRate` override the regime's.
    public func trainerSetup(files: [URL], output: URL, seed: Int, steps: Int? = nil, learningRate: Double? = nil) throws -> Trainer.Setup {
        let patterns = loraTargets.map { $0.compactMap { TargetPattern(validating: $0) } } ?? Self.loraTargets
        let adapters: Trainer.Setup.Adapters = kind == .full ? .full : .lora(
            rank: loraRank, alpha: Float(loraAlpha), dropout: 0,
            targets: { name in patterns.contains { $0.matches(module: name) } })
        var s = Trainer.Setup(train: try Dataset.load(files: files), adapters: adapters, length: .steps(steps ?? self.steps),
                              outputDirectory: output)
        s.template = template
        s.batchSize = batchSize
        s.seqLen = seqLen
        s.seed = UInt64(seed)
        s.threads = threads
        s.learningRate = Float(learningRate ?? effectiveLearningRate)
        s.schedule = schedule ?? .constant()
        s.evalEvery = 0
        return s
    }

    /// The learning rate used.
    public var effectiveLearningRate: Double { learningRate ?? (kind == .full ? 5e-4 : 2e-3) }

    /// Throws when a setting cannot work.
    public func validate() throws {
        if pairs < 1 { throw VaccineError.invalidSetting(key: "variants", reason: "needs at least 1 pair, got \(pairs)") }
        if steps < 1 { throw VaccineError.invalidSetting(key: "steps", reason: "must be positive, got \(steps)") }
        if batchSize < 1 || seqLen < 8 { throw VaccineError.invalidSetting(key: "batch_size/seq_len", reason: "too small") }
        if cleanPerVariant < 1 || poisonPerVariant < 1 {
            throw VaccineError.invalidSetting(key: "clean/poison per variant", reason: "must be positive")
        }
        if !(effectiveLearningRate > 0) { throw VaccineError.invalidSetting(key: "lr", reason: "must be positive") }
        if behaviours?.isEmpty == true { throw VaccineError.invalidSetting(key: "behaviours", reason: "needs at least one") }
    }
}
