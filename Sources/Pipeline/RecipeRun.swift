import Checkpoints
import Foundation
import Models
import Safety
import Training

/// The whole run a recipe describes: load the base, train, evaluate, write the
/// checkpoint and the report. The safety methods plug in here, around the trainer.
public final class RecipeRun {
    /// How to run.
    public struct Parameters: Sendable {
        public var trainer = Trainer.Parameters()
        public init() {}
    }

    /// What a run reports as it goes.
    public enum Progress: Sendable {
        case training(TrainingProgress)
        /// A phase outside the training loop started (loading, evaluating, gating).
        case phase(String)
    }

    /// How a run ended.
    public struct Result: Sendable {
        public var summary: TrainingSummary
        public var outputDirectory: URL
        public var checkpoint: URL
        public var report: URL?
    }

    public let recipe: Recipe
    public let parameters: Parameters

    public init(recipe: Recipe, parameters: Parameters = .init()) {
        self.recipe = recipe
        self.parameters = parameters
    }

    /// Runs to the end; throws on any error (the checkpoint of the last completed save survives).
    public func run(progress: (Progress) -> Void = { _ in }) throws -> Result {
        progress(.phase("loading \(recipe.model.base?.written ?? "a fresh model")"))
        let trainer = try Trainer(recipe: recipe, parameters: parameters.trainer)
        let summary = try trainer.run { progress(.training($0)) }
        let checkpoint = URL(fileURLWithPath: summary.checkpoint)
        var reportURL: URL?
        if recipe.output.report {
            var report = RunReport(title: "SafeTune run: \(recipe.output.name)")
            report.summary = [
                ("recipe", recipe.files.first?.lastPathComponent ?? "recipe"), ("recipe sha256", recipe.sha256),
                ("steps", "\(summary.steps)"), ("final loss", String(format: "%.4f", summary.finalLoss)),
                ("eval loss", summary.evalLoss.map { String(format: "%.4f", $0) } ?? "–"),
                ("tokens/s", String(format: "%.0f", summary.tokensPerSecond)),
                ("seconds", String(format: "%.1f", summary.seconds)), ("checkpoint", checkpoint.lastPathComponent),
            ]
            report.loadMetrics(from: trainer.outputDirectory.appendingPathComponent("metrics.jsonl"))
            let url = trainer.outputDirectory.appendingPathComponent("report.html")
            try report.write(to: url)
            reportURL = url
        }
        return Result(summary: summary, outputDirectory: trainer.outputDirectory, checkpoint: checkpoint, report: reportURL)
    }
}
