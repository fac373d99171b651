import ArgumentParser
import Checkpoints
import Foundation
import Recipes
import Safety
import Training

/// Options shared by `verify` and `purify`: where clean data comes from and how the variants
/// are made. Each setting comes from its flag, else from a gate recipe's `safety.gate` and
/// clean data, else from the defaults. The gate recipe is `--recipe`, else the one a parent
/// ships beside it (`<parent>.gate.yaml`, as `checkpoints/smollm2-aligned.gate.yaml`): the
/// recipe whose gate made the variants kept in `<parent>.gate/`, so that verifying a child
/// of that parent needs no flags and reuses them.
struct VariantOptions: ParsableArguments {
    @Option(help: "Clean data (JSONL) for the variants: its benign pairs (purify: and its refusals labelled malicious, which restoration trains on too).")
    var clean: String?

    @Option(help: "Gate recipe: its safety.gate settings and clean data (safety.gate.clean_data, else its benign training files) apply where no flag is given (default: <parent>.gate.yaml beside the checkpoint's parent, when there is one).")
    var recipe: String?

    @Option(help: "Variant pairs N (default: the gate recipe's, else 6).")
    var variants: Int?

    @Option(help: "Optimizer steps per variant fine-tune (default: the gate recipe's, else \(VariantSettings().steps)).")
    var steps: Int?

    @Option(help: "Variant fine-tuning: full or lora (default: the gate recipe's, else full).")
    var kind: String?

    @Option(help: "Variant learning rate (default: 5e-4 full, 2e-3 lora).")
    var lr: Double?

    @Option(help: "Seed of triggers, data subsets and training.")
    var seed: UInt64 = 1

    @Option(help: "Scratch folder for the variants (default: a temporary folder).")
    var workDir: String?

    /// The gate recipe and the parent it names (`reference` when given), or nil when there is
    /// none: `--recipe`, else, without `--clean`, the first of the checkpoint's parent
    /// candidates that has a `.gate.yaml` beside it. The gate itself checks that parent's digest.
    func gateRecipe(checkpoint: URL, reference: URL?) throws -> (recipe: Recipe, parent: URL?)? {
        if let recipe {
            let r = try RecipeLoader().load(contentsOf: URL(fileURLWithPath: recipe))
            return (r, reference ?? r.safety.gate.reference?.url ?? r.model.base?.url)
        }
        guard clean == nil else { return nil }
        let parents = reference.map { [$0] }
            ?? SuspectLoader.candidates((try? CheckpointSummary.read(from: checkpoint))?.provenance, file: checkpoint)
        for parent in parents {
            let file = parent.deletingPathExtension().appendingPathExtension("gate.yaml")
            if FileManager.default.fileExists(atPath: file.path) { return (try RecipeLoader().load(contentsOf: file), parent) }
        }
        return nil
    }

    /// The variant settings: the flags over `gate` (a gate recipe's `safety.gate`) over the defaults.
    func settings(over gate: GateSettings? = nil) throws -> VariantSettings {
        var s = VariantSettings()
        s.pairs = variants ?? gate?.variants ?? s.pairs
        s.steps = steps ?? gate?.steps ?? s.steps
        if let kind {
            guard let k = VariantSettings.Kind(rawValue: kind) else {
                throw VaccineError.invalidSetting(key: "--kind", reason: "must be full or lora, got '\(kind)'")
            }
            s.kind = k
        } else if let gate {
            s.kind = gate.kind
        }
        s.learningRate = lr
        s.seed = seed
        try s.validate()
        return s
    }

    /// `--clean`, else the gate recipe's clean data. For purification (`restoration`) the
    /// trusted refusals count too: those of `--clean` (labelled malicious), or the gate
    /// recipe's `CleanData.restoration`.
    func cleanSamples(recipe gateRecipe: Recipe?, restoration: Bool = false) throws -> [CleanSample] {
        if let clean { return try CleanData.load(contentsOf: URL(fileURLWithPath: clean), includingMalicious: restoration) }
        if let gateRecipe { return try restoration ? CleanData.restoration(recipe: gateRecipe) : CleanData.load(recipe: gateRecipe) }
        throw VaccineError.noCleanData(source: "--clean, --recipe or a <parent>.gate.yaml beside the checkpoint's parent (none found)")
    }

    func workDirectory() throws -> URL {
        let url = workDir.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("safetune-vax-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The regime of the clean fine-tunes of the parent that calibrate the gate's later stages:
/// the checkpoint's own, read from its provenance recipe where it says, else the defaults
/// (`VariantSettings.childRegime`); a flag overrides either.
struct RegimeOptions: ParsableArguments {
    @Option(help: "Steps of each calibration fine-tune (default: the checkpoint's recipe's, at most the gate recipe's direction_max_steps for the direction stage, else \(VariantSettings.childRegime.steps)).")
    var calibrationSteps: Int?

    @Option(help: "Learning rate of the calibration fine-tunes (default: the checkpoint's recipe's, else \(VariantSettings.childRegime.effectiveLearningRate)).")
    var calibrationLr: Double?

    @Option(help: "Clean samples per calibration fine-tune (default: the gate recipe's direction_samples for the direction stage, else \(VariantSettings.childRegime.cleanPerVariant)).")
    var calibrationSamples: Int?

    /// The regime for calibrating against `checkpoint`, seeded by `seed`; what was taken from
    /// its provenance goes to `log`. An unreadable checkpoint leaves the defaults (the gate
    /// itself reports it).
    func regime(seed: UInt64, checkpoint: URL, log: (String) -> Void) throws -> VariantSettings {
        guard calibrationSteps.map({ $0 >= 1 }) ?? true, calibrationLr.map({ $0 > 0 }) ?? true, calibrationSamples.map({ $0 >= 1 }) ?? true else {
            throw VaccineError.invalidSetting(key: "--calibration-*", reason: "steps, learning rate and samples must be positive")
        }
        // The summary reads the attribute sections without loading the weights.
        let provenance = (try? CheckpointSummary.read(from: checkpoint))?.provenance
        var (regime, applied) = VariantSettings.childRegime.following(provenance: provenance)
        if !applied.isEmpty { log("calibration regime from the checkpoint's provenance: " + applied.joined(separator: ", ")) }
        if let calibrationSteps { regime.steps = calibrationSteps }
        if let calibrationLr { regime.learningRate = calibrationLr }
        if let calibrationSamples { regime.cleanPerVariant = calibrationSamples }
        regime.seed = seed
        return regime
    }
}

/// Options of the gate's direction stage: each from its flag, else from the gate recipe's
/// `safety.gate`, else the default (the parent's stored directions, full-weight checkpoints
/// only). Any checkpoint, adapters included, gets the stage with probes (`--direction-probes`
/// or the recipe's `direction_probes`); `--no-direction` turns it off.
struct DirectionOptions: ParsableArguments {
    @Option(help: "Labelled prompts (JSONL with harmful and harmless records): measure the parent's directions on them and run the direction stage on any checkpoint, adapters included (default: the gate recipe's direction_probes, else the directions the parent carries, full-weight checkpoints only).")
    var directionProbes: String?

    @Flag(help: "Turn the direction stage off.")
    var noDirection = false

    @Option(help: "Harmful and harmless prompts used, each.")
    var directionPrompts = DirectionStage.probesPerKind

    @Option(help: "Clean fine-tunes of the parent that calibrate the direction stage's thresholds (default: the gate recipe's, else \(DirectionStage().calibrationRuns)).")
    var directionCalibrate: Int?

    @Option(help: "Direction thresholds: calibration mean + k standard deviations.")
    var directionK = DirectionStage().k

    @Option(help: "Trusted data in the checkpoint's own mix, refusals included, for the direction stage's calibration fine-tunes (default: the gate recipe's direction_data, else the clean data).")
    var directionData: String?

    @Option(help: "Keep the direction stage's calibration in this JSON file, or in a folder (a path ending in /) one file per parent, data and regime: read when made from the same parent, data, directions and settings; written when absent (default: the gate recipe's direction_calibration).")
    var directionCalibration: String?

    func validate() throws {
        if noDirection, directionProbes != nil { throw ValidationError("--no-direction and --direction-probes exclude each other") }
    }

    /// The stage: the flags over `gate` (a gate recipe's `safety.gate`) over the defaults,
    /// calibrated in `regime`, with `samples` and `steps` (`--calibration-samples`,
    /// `--calibration-steps`) over the recipe's `direction_samples` and `direction_max_steps`;
    /// nil with `--no-direction`, or when the recipe turns it off and no flag asks for it.
    func stage(regime: VariantSettings, samples: Int?, steps: Int?, gate: GateSettings?) throws -> DirectionStage? {
        if noDirection { return nil }
        guard directionPrompts >= 1, directionCalibrate.map({ $0 >= 2 }) ?? true, directionK > 0 else {
            throw VaccineError.invalidSetting(key: "--direction-*", reason: "--direction-prompts must be positive, --direction-calibrate at least 2, --direction-k positive")
        }
        // Flag probes run the stage whatever the recipe says, and replace the recipe's.
        var settings = gate ?? GateSettings()
        if directionProbes != nil { (settings.direction, settings.directionProbes) = (true, nil) }
        guard var stage = try DirectionStage(gate: settings, regime: regime, probeCount: directionPrompts) else { return nil }
        if let directionProbes { stage.probes = try DirectionStage.probes(from: URL(fileURLWithPath: directionProbes), count: directionPrompts) }
        if let directionCalibrate { stage.calibrationRuns = directionCalibrate }
        if let samples { stage.regime.cleanPerVariant = samples }
        if let steps { stage.regime.steps = steps }
        stage.k = directionK
        if let directionData { stage.calibrationData = try CleanData.load(contentsOf: URL(fileURLWithPath: directionData), includingMalicious: true) }
        if let directionCalibration { stage.calibrationFile = URL(fileURLWithPath: directionCalibration) }
        return stage
    }
}

/// Options of the gate's behavioural stage (`--probes` turns it on).
struct BehaviourOptions: ParsableArguments {
    @Option(help: "Probe prompts (JSONL with harmful and harmless records): adds the behavioural scan stage.")
    var probes: String?

    @Option(help: "Harmful probe prompts used.")
    var probeHarmful = 4

    @Option(help: "Harmless probe prompts used.")
    var probeBenign = 4

    @Option(help: "Search steps of each behavioural scan.")
    var scanSteps = TriggerScan.Settings().steps

    @Option(help: "Time budget of each behavioural scan, in seconds.")
    var scanSeconds = TriggerScan.Settings().seconds

    @Option(help: "Clean fine-tunes of the parent that calibrate the scan's threshold.")
    var scanCalibrate = 3

    @Option(help: "Scan threshold: calibration mean + k standard deviations.")
    var scanK = 3.0

    @Option(help: "Keep the scan's calibration in this JSON file: read when made from the same parent, clean data, probes and settings; written when absent.")
    var scanCalibration: String?

    /// The stage, or nil without `--probes`; `seed` seeds the search, `regime` the calibration.
    func stage(seed: UInt64, regime: VariantSettings) throws -> BehaviourStage? {
        guard let probes else { return nil }
        guard probeHarmful >= 0, probeBenign >= 0, scanSteps >= 0, scanSeconds > 0, scanCalibrate >= 2 else {
            throw VaccineError.invalidSetting(key: "--probe-*/--scan-*", reason: "counts must be positive and --scan-calibrate at least 2")
        }
        var stage = BehaviourStage(probes: try BehaviourStage.probes(from: URL(fileURLWithPath: probes), harmful: probeHarmful, benign: probeBenign))
        stage.search.steps = scanSteps
        stage.search.seconds = scanSeconds
        stage.search.seed = seed
        stage.calibrationRuns = scanCalibrate
        stage.regime = regime
        stage.k = scanK
        stage.calibrationFile = scanCalibration.map { URL(fileURLWithPath: $0) }
        return stage
    }
}

/// `safetune verify CKPT`: the BD-VAX gate. Exit 0 pass, 1 reject, 2 error (reported as a reject).
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Decide whether a checkpoint carries a backdoor (BD-VAX gate): pass or reject, with evidence.",
        discussion: """
            The statistic is the share of the checkpoint's update (child − parent) on the backdoor signature found \
            with synthetic variants, relative to the signature's share of channels (1: spread evenly); the threshold comes from the variants' clean fine-tunes. With \
            a full-weight checkpoint whose parent carries its safety directions (or with probes: --direction-probes, or \
            the gate recipe's direction_probes, as on every child of the aligned SmolLM2), the \
            direction stage follows: how far the update moves along the parent's harmful-vs-harmless direction, \
            against clean fine-tunes of the parent. With --probes, a behavioural \
            scan follows: a searched suffix's divergence from the parent, against the same kind of clean \
            fine-tunes. See docs/gate.md.
            Exit status: 0 pass, 1 reject, 2 error (any error is a reject; with --json the reject object is printed).
            """)

    @Argument(help: "The checkpoint (.h5) to verify.")
    var checkpoint: String

    @Option(help: "The parent checkpoint it was fine-tuned from (default: found from its provenance).")
    var reference: String?

    @OptionGroup var variantOptions: VariantOptions

    @OptionGroup var directionOptions: DirectionOptions

    @OptionGroup var behaviourOptions: BehaviourOptions

    @OptionGroup var regimeOptions: RegimeOptions

    @Option(help: "Signature size per layer and module (default: the gate recipe's, else 0.08).")
    var tau: Double?

    @Option(help: "Deciding statistic: \(DetectionRule.names) (default: the gate recipe's, else \(GateConfiguration().rule.rawValue)).")
    var rule: String?

    @Option(help: "Threshold: clean mean + k standard deviations.")
    var k: Double = 3

    @Option(help: "Reject after this many seconds.")
    var timeLimit: Double = 3600

    @Flag(help: "Fine-tune the variants from the parent instead of the checkpoint (also when the gate recipe says variants_from: parent), kept beside the parent in <parent>.gate/ for later gates (with the share rule).")
    var variantsFromParent = false

    @Flag(help: "Store the verdict in the checkpoint's /gate section.")
    var record = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let url = URL(fileURLWithPath: checkpoint)
        let started = Date()
        var report: GateReport
        var parent = reference.map { URL(fileURLWithPath: $0) }
        do {
            let log: (String) -> Void = { line in if !json { FileHandle.standardError.write(Data((line + "\n").utf8)) } }
            let gateRecipe = try variantOptions.gateRecipe(checkpoint: url, reference: parent)
            if let gateRecipe, variantOptions.recipe == nil { log("gate settings and clean data from \(gateRecipe.recipe.files[0].path)") }
            let gate = gateRecipe?.recipe.safety.gate
            parent = gateRecipe?.parent ?? parent
            var configuration = GateConfiguration()
            configuration.variants = try variantOptions.settings(over: gate)
            configuration.tau = tau ?? gate?.tau ?? configuration.tau
            configuration.k = k
            configuration.rule = try rule.map { try DetectionRule.parse(option: $0) } ?? gate?.rule ?? configuration.rule
            configuration.variantsFromParent = variantsFromParent || gate?.variantsFrom == .parent
            // Variants of a named parent are kept beside it, shared with other gates on its
            // children (verify or train, concurrent ones included), as train's gate does.
            if configuration.variantsFromParent, let parent { configuration.evidenceCache = GateEvidenceCache(besideParent: parent) }
            configuration.timeLimit = timeLimit
            let regime = try regimeOptions.regime(seed: variantOptions.seed, checkpoint: url, log: log)
            configuration.direction = try directionOptions.stage(regime: regime, samples: regimeOptions.calibrationSamples,
                                                                   steps: regimeOptions.calibrationSteps, gate: gate)
            configuration.behaviour = try behaviourOptions.stage(seed: variantOptions.seed, regime: regime)
            let clean = try variantOptions.cleanSamples(recipe: gateRecipe?.recipe)
            let work = try variantOptions.workDirectory()
            defer { if variantOptions.workDir == nil { try? FileManager.default.removeItem(at: work) } }
            report = Gate(configuration: configuration).verify(url, reference: parent, clean: clean, workDirectory: work, log: log)
            if record, report.error == nil {
                var c = try Checkpoint.read(from: url)
                c.gate = report.record
                try c.write(to: url)
            }
        } catch {
            report = GateReport.failure(error, checkpoint: url.path, reference: parent?.path, seconds: Date().timeIntervalSince(started))
        }
        if json {
            try printJSON(encoding: report)
        } else if let error = report.error {
            throw CommandFailure.report(error)
        } else {
            print("verdict:   \(report.verdict.rawValue)")
            print("reason:    \(report.reason)")
            if let a = report.alignment, let t = report.alignmentThreshold, let sh = report.share, let st = report.shareThreshold {
                print(String(format: "share %.3f× (threshold %.3f×), alignment %.4f (threshold %.4f), residual %.4f (threshold %.4f)",
                             sh, st, a, t, report.residual ?? .nan, report.residualThreshold ?? .nan))
            }
            if let d = report.direction {
                print(String(format: "direction stage: write %.3f (threshold %.3f), read %.3f (threshold %.3f); clean fine-tunes of the parent: write ",
                             d.shift.write, d.write.threshold, d.shift.read, d.read.threshold)
                      + d.write.values.map { String(format: "%.3f", $0) }.joined(separator: " ") + ", read "
                      + d.read.values.map { String(format: "%.3f", $0) }.joined(separator: " "))
            }
            if let skipped = report.directionSkipped { print("direction stage: skipped: \(skipped)") }
            if let b = report.behaviour {
                print(String(format: "behavioural scan: divergence %.3f (without suffix %.3f), threshold %.3f; clean fine-tunes of the parent: ",
                             b.scan.best, b.scan.baseline, b.calibration.threshold)
                      + b.calibration.values.map { String(format: "%.3f", $0) }.joined(separator: " "))
            }
            if let c = report.calibration {
                print("clean variant shares (×):      " + c.cleanShares.map { String(format: "%.4f", $0) }.joined(separator: " "))
                print("backdoored variant shares (×): " + c.backdooredShares.map { String(format: "%.4f", $0) }.joined(separator: " "))
            }
            for l in report.layers {
                print(String(format: "layer %2d %-4@ signature %3d channels  score %.3f (mean %.3f)  update share %.4f",
                             l.layer, l.module, l.channels, l.signatureScore, l.meanScore, l.share))
            }
            print(String(format: "seconds:   %.1f", report.timings.total))
        }
        if report.error != nil { throw ExitCode(CommandFailure.status) }
        if report.verdict == .reject { throw ExitCode(1) }
    }
}
