import ArgumentParser
import Foundation
import Safety

/// `safetune purify CKPT -o OUT`: BD-VAX purification.
struct PurifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purify",
        abstract: "Remove a possible backdoor without knowing its trigger (BD-VAX): signature from synthetic variants, neutralise, restore fluency.",
        discussion: "Exit status: 0 done, 2 error.")

    @Argument(help: "The checkpoint (.h5) to purify.")
    var checkpoint: String

    @Option(name: .shortAndLong, help: "Where to write the purified checkpoint.")
    var output: String

    @Option(help: "The parent of an adapter-only checkpoint (default: found from its provenance).")
    var base: String?

    @OptionGroup var variantOptions: VariantOptions

    @Option(help: "Signature size per layer (fraction of channels neutralised).")
    var tau = PurifierSettings().tau

    @OptionGroup var fluency: FluencyFlags

    @Option(help: "What the variants' poisons make a model do, comma-separated, in order: fixed-response, refuse, comply (comply needs refused harmful requests, labelled malicious, in --clean; default: \(PoisonGenerator.benignBehaviours.map(\.rawValue).joined(separator: ","))).")
    var behaviours: String?

    @Flag(help: "Print a JSON summary.")
    var json = false

    func run() throws {
        do {
            let url = URL(fileURLWithPath: checkpoint)
            let gateRecipe = try variantOptions.gateRecipe(checkpoint: url, reference: nil)
            var settings = PurifierSettings()
            settings.variants = try variantOptions.settings(over: gateRecipe?.recipe.safety.gate)
            settings.tau = tau
            fluency.apply(to: &settings)
            if let behaviours {
                settings.variants.behaviours = try behaviours.split(separator: ",").map { name in
                    guard let b = PoisonBehaviour(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                        throw VaccineError.invalidSetting(key: "--behaviours", reason: "unknown behaviour '\(name)'")
                    }
                    return b
                }
                try settings.variants.validate()
            }
            let clean = try variantOptions.cleanSamples(recipe: gateRecipe?.recipe, restoration: true)
            let work = try variantOptions.workDirectory()
            defer { if variantOptions.workDir == nil { try? FileManager.default.removeItem(at: work) } }
            let purifier = Purifier(settings: settings)
            if !json { purifier.log = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } }
            let report = try purifier.purify(url, clean: clean, output: URL(fileURLWithPath: output),
                                             base: base.map { URL(fileURLWithPath: $0) }, workDirectory: work)
            if json {
                try printJSON(encoding: report)
            } else {
                print("purified:  \(report.output)")
                print("neutralised \(report.channels) channels (\(report.mode.rawValue), τ = \(report.tau)), fluency \(report.fluencySteps) steps")
                print(String(format: "seconds:   %.1f", report.secondsTotal))
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CommandFailure.report(String(describing: error))
        }
    }
}
