import ArgumentParser
import Experiments
import Foundation
import Safety

/// `safetune vax-experiment`: plant backdoors, verify, purify, measure (docs/experiments/tiny-model-results.md, "BD-VAX").
struct BackdoorExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vax-experiment",
        abstract: "BD-VAX experiment: plant 3 trigger styles × 2 behaviours into a base, add clean fine-tunes, verify all, purify the backdoored ones.",
        discussion: "Writes results.json and results.md into the output folder. Exit status: 0 done, 2 error.")

    @Option(help: "Base checkpoint (.h5).")
    var base: String

    @Option(help: "Corpus training records (prompt, completion, kind).")
    var train: String = "data/corpus/train.jsonl"

    @Option(help: "Corpus validation records (evaluation prompts).")
    var val: String = "data/corpus/val.jsonl"

    @Option(name: .shortAndLong, help: "Output folder.")
    var output: String

    @Option(help: "Planting / clean fine-tune steps.")
    var steps: Int = BackdoorExperimentSettings().steps

    @Option(help: "Poisoned records added to the fine-tuning data of each backdoored child.")
    var poison: Int = BackdoorExperimentSettings().poisonSize

    @Option(help: "Planting / clean fine-tune learning rate.")
    var lr: Double = BackdoorExperimentSettings().learningRate

    @Option(help: "Clean fine-tunes (false-alarm rate).")
    var cleanRuns: Int = BackdoorExperimentSettings().cleanRuns

    @Option(help: "Variant pairs per verify.")
    var variants: Int = 4

    @Option(help: "Steps per variant fine-tune.")
    var variantSteps: Int = VariantSettings().steps

    @Option(help: "Prompts per ASR measurement.")
    var asrPrompts: Int = BackdoorExperimentSettings().asrPrompts

    @Option(help: "Skill prompts for utility.")
    var utilityPrompts: Int = BackdoorExperimentSettings().utilityPrompts

    @Option(help: "Deciding statistic: \(DetectionRule.names).")
    var rule: String = GateConfiguration().rule.rawValue

    @Flag(help: "Fine-tune the gate's variants from the trusted parent instead of the checkpoint.")
    var variantsFromParent = false

    @Flag(help: "Turn off the gate's direction stage (on when the base carries its safety directions; calibrated by clean fine-tunes in the children's regime).")
    var noDirection = false

    @Option(help: "Seed of the planted triggers and the fine-tuning data.")
    var seed: UInt64 = BackdoorExperimentSettings().seed

    @Option(help: "Purification signature size per layer.")
    var purifyTau = PurifierSettings().tau

    @OptionGroup var fluency: FluencyFlags

    func run() throws {
        do {
            var s = BackdoorExperimentSettings()
            s.steps = steps
            s.learningRate = lr
            guard poison >= 1 else { throw VaccineError.invalidSetting(key: "--poison", reason: "must be positive, got \(poison)") }
            s.poisonSize = poison
            s.cleanRuns = cleanRuns
            s.asrPrompts = asrPrompts
            s.utilityPrompts = utilityPrompts
            s.gate.variants.pairs = variants
            s.gate.variants.steps = variantSteps
            s.gate.variants.template = "plain"
            try s.gate.variants.validate()
            s.gate.rule = try DetectionRule.parse(option: rule)
            s.gate.variantsFromParent = variantsFromParent
            s.seed = seed
            if noDirection {
                s.gate.direction = nil
            } else {
                let regime = s.childRegime
                s.gate.direction?.regime = regime
                s.gate.direction?.calibrationFile = URL(fileURLWithPath: output).appendingPathComponent("direction-calibration.json")
            }
            s.purifier.variants = s.gate.variants
            fluency.apply(to: &s.purifier)
            s.purifier.tau = purifyTau
            let experiment = BackdoorExperiment(base: URL(fileURLWithPath: base), train: URL(fileURLWithPath: train),
                                                validation: URL(fileURLWithPath: val), output: URL(fileURLWithPath: output), settings: s)
            experiment.log = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            let result = try experiment.run()
            print(result.markdown(), terminator: "")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CommandFailure.report(String(describing: error))
        }
    }
}
