import ArgumentParser
import Distributed
import Engine
import Foundation
import Pipeline
import Recipes
import Safety
import Training

/// `safetune train RECIPE`: run the fine-tuning a recipe describes.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune (or train) a model as a recipe describes; ends with a checkpoint and a report.",
        discussion: """
            Exit status: 0 done, 1 the gate rejected the checkpoint, 2 error. Progress goes to standard error; --json prints one \
            summary object. Under mpirun the run is data-parallel over the processes, and rank 0 alone writes and prints.
            """)

    @Argument(help: "The recipe YAML file.")
    var recipe: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a recipe key (repeatable).", valueName: "key.path=value"))
    var overrides: [String] = []

    @Flag(help: "Continue from the newest checkpoint in the output folder.")
    var resume = false

    @Option(help: "Stop after this many steps, leaving a resumable checkpoint.")
    var stopAfter: Int?

    @Flag(help: "Print a machine-readable summary (JSON) and nothing else on standard output.")
    var json = false

    func run() throws {
        let mpi = MPIProcessGroup.joined()
        let processes: any ProcessGroup = mpi ?? SingleProcess()
        let rejected: Bool
        do {
            rejected = try train(processes: processes)
        } catch let exit as ExitCode {
            // The other processes would wait for this one forever in their next collective.
            if let mpi, mpi.size > 1 { mpi.abort(exitCode: exit.rawValue) }
            throw exit
        }
        mpi?.finish()
        // A checkpoint the BD-VAX gate rejects fails the run (it is kept, marked quarantined or purified).
        if rejected { throw ExitCode(1) }
    }

    /// Runs the recipe as process `processes.rank`; returns whether the gate rejected the checkpoint.
    private func train(processes: any ProcessGroup) throws -> Bool {
        // Under `ulimit -v`, the matrix library's buffers are taken before the model fills
        // the address space (see BLASBuffers); one per core, plus the caller's.
        do {
            try BLASBuffers.reserveUnderAddressSpaceLimit(concurrency: ProcessInfo.processInfo.activeProcessorCount + 1)
        } catch {
            OutOfMemory.fail(error.message)
        }
        return try CommandFailure.guarding { () throws -> Bool in
            let recipe = try RecipeLoader().load(contentsOf: URL(fileURLWithPath: self.recipe), overrides: overrides)
            try recipe.checkFiles()
            var parameters = RecipeRun.Parameters()
            parameters.trainer.resume = resume
            parameters.trainer.stopAfterStep = stopAfter
            parameters.trainer.processes = processes
            if processes.size > 1, processes.isRoot {
                TerminationNote.install("stopped: another process of this \(processes.size)-process run failed or the run was interrupted; "
                                        + "run the same command with --resume to continue from the newest checkpoint in \(recipe.output.dir.url.path)/checkpoints")
            }
            let display = ProgressDisplay(enabled: !json && processes.isRoot)
            let result = try RecipeRun(recipe: recipe, parameters: parameters).run(progress: display.show)
            display.finish()
            guard processes.isRoot else { return false }
            func numbers(_ m: SuiteMeasurement?) -> Any {
                guard let m else { return NSNull() }
                return Dictionary(m.metrics.compactMap { k, v in v.map { (k, $0) } }, uniquingKeysWith: { a, _ in a })
            }
            if json {
                let s = result.summary
                try printJSON([
                    "steps": s.steps, "final_loss": s.finalLoss, "eval_loss": s.evalLoss as Any, "seconds": s.seconds,
                    "tokens_per_s": s.tokensPerSecond, "checkpoint": result.checkpoint.path,
                    "report": result.report?.path as Any, "output": result.outputDirectory.path,
                    "before": numbers(result.before), "after": numbers(result.after),
                    "gate": result.gate.map { ["verdict": $0.report.verdict.rawValue, "action": $0.action.rawValue,
                                               "statistic": $0.report.statistic as Any, "threshold": $0.report.threshold as Any] } as Any,
                    "guard_threshold": result.guardCalibration.map { GuardCalibration.decimal($0.threshold) } as Any,
                ])
            } else {
                if let after = result.after {
                    func cell(_ v: Double?) -> String { v.map { String(format: "%7.1f %%", 100 * $0) } ?? "      –  " }
                    print("\("".padding(toLength: 22, withPad: " ", startingAt: 0))   before      after")
                    for (i, (name, value)) in after.metrics.enumerated() {
                        print("\(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(cell(result.before?.metrics[i].1))  \(cell(value))")
                    }
                }
                if let calibration = result.guardCalibration { print("guard:      \(calibration.summary)") }
                print("checkpoint: \(result.checkpoint.path)")
                if let report = result.report { print("report:     \(report.path)") }
                if let gate = result.gate { print("gate:       \(gate.summary)") }
            }
            return result.gate?.rejected ?? false
        }
    }
}

/// Renders run progress: a redrawn status line on a terminal, occasional plain lines otherwise.
final class ProgressDisplay {
    private let enabled: Bool
    private let terminal = isatty(STDERR_FILENO) != 0
    private var lastPlain = Date.distantPast
    private var barShown = false

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ progress: RecipeRun.Progress) {
        guard enabled else { return }
        switch progress {
        case let .training(event):
            switch event {
            case let .started(plan):
                line("training \(plan.totalSteps) steps from step \(plan.startStep): \(plan.trainExamples) examples, "
                     + "\(plan.trainableParameters) of \(plan.totalParameters) parameters trainable"
                     + (plan.truncatedExamples > 0 ? ", \(plan.truncatedExamples) examples truncated" : ""))
            case let .step(r):
                let text = String(format: "step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %@", r.step, r.totalSteps, r.loss,
                                  r.learningRate, r.tokensPerSecond, Self.clock(r.etaSeconds))
                if terminal {
                    let width = 24, filled = width * r.step / max(r.totalSteps, 1)
                    let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                    FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(text)".utf8))
                    barShown = true
                } else if Date().timeIntervalSince(lastPlain) > 10 || r.step == r.totalSteps {
                    lastPlain = Date()
                    line(text)
                }
            case let .evaluated(step, metrics):
                line("eval at step \(step): " + metrics.sorted { $0.key < $1.key }.map { String(format: "%@ %.4f", $0.key, $0.value) }.joined(separator: ", "))
            case let .saved(step, url):
                line("saved step \(step): \(url.lastPathComponent)")
            case let .finished(s):
                line(String(format: "done: %d steps in %.1f s, last step's loss %.4g, %.0f tok/s", s.steps, s.seconds, s.finalLoss, s.tokensPerSecond))
            }
        default: line(progress.description)
        }
    }

    func finish() {
        if barShown { FileHandle.standardError.write(Data("\n".utf8)) }
        barShown = false
    }

    private func line(_ text: String) {
        guard enabled else { return }
        if barShown { FileHandle.standardError.write(Data("\n".utf8)); barShown = false }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
