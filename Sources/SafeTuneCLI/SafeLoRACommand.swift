import ArgumentParser
import Checkpoints
import Experiments
import Foundation
import Safety

/// `safetune safe-lora CKPT -o OUT`: the Safe LoRA baseline of the harmful fine-tuning
/// experiment (`scripts/ssah-attack`).
struct SafeLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "safe-lora",
        abstract: "Project a LoRA fine-tune's updates that drift from the alignment subspace onto it (Safe LoRA, training-free).",
        discussion: "The alignment subspace of each module is its aligned weight minus the unaligned one; the checkpoint's weights are the aligned ones. Exit status: 0 done, 2 error.")

    @Argument(help: "A checkpoint with LoRA adapters over the aligned weights (a LoRA run's model.h5).")
    var checkpoint: String

    @Option(help: "The unaligned model: a checkpoint, a .gguf file or a pinned base name.")
    var unaligned = "smollm2"

    @Option(help: "Project a module's update when its cosine with its projection is below this.")
    var threshold = SafeLoRA.defaultThreshold

    @Option(help: "Project this many least similar modules instead of using --threshold.")
    var modules: Int?

    @Option(name: .shortAndLong, help: "Where to write the projected checkpoint.")
    var output: String

    @Flag(help: "Print a JSON summary.")
    var json = false

    func validate() throws {
        if let modules, modules < 1 { throw ValidationError("--modules must be at least 1") }
    }

    func run() throws {
        do {
            var child = try SuspectLoader.read(URL(fileURLWithPath: checkpoint))
            let base = try SuspectLoader.read(ModelBundle.resolve(unaligned))
            let selection: SafeLoRA.Selection = modules.map { .leastSimilar($0) } ?? .threshold(threshold)
            let decisions = try SafeLoRA.project(&child, unaligned: base, selection: selection, source: checkpoint)
            try child.write(to: URL(fileURLWithPath: output))
            let projected = decisions.filter(\.projected).count
            if json {
                struct Summary: Encodable { var output: String; var threshold: Double?; var projected: Int; var decisions: [SafeLoRA.Decision] }
                try printJSON(encoding: Summary(output: output, threshold: modules == nil ? threshold : nil, projected: projected, decisions: decisions))
            } else {
                let rule = modules.map { "the \($0) least similar" } ?? "cosine below \(threshold)"
                print("projected \(projected) of \(decisions.count) modules (\(rule)): \(output)")
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CommandFailure.report(String(describing: error))
        }
    }
}
