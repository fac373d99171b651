import Foundation
import Training

/// The training and evaluation data a recipe names, read and checked against the recipe's needs.
public struct RecipeData: Sendable {
    /// `data.train`, read.
    public let train: Dataset
    /// `data.eval`, read.
    public let eval: Dataset

    /// Reads every data file of `recipe` (throws `DatasetError` for a bad file or line) and checks
    /// that SA-ESS has labels to learn from when it is enabled (`RecipeError.conflict`).
    public init(recipe: Recipe, maxLineBytes: Int = 1 << 20) throws {
        let reader = JSONLReader(format: recipe.data.format, maxLineBytes: maxLineBytes)
        train = try Dataset.load(recipe.data.train, reader: reader)
        eval = try Dataset.load(recipe.data.eval, reader: reader)
        guard recipe.safety.signal.enabled else { return }
        func conflict(_ message: String) -> RecipeError {
            let file = recipe.files.first.map(RecipeLocation.displayPath) ?? "recipe"
            return .conflict(RecipeLocation(file: file, line: 0, column: 0, baseDirectory: recipe.directory),
                             keyPath: "safety.signal.enabled", message: message)
        }
        if train.labelledCount == 0 {
            throw conflict("no training example has a label; set label on a data.train file or per line")
        }
        // A packed row joins several examples, so it has no one label: the classification
        // would never train, and a labelled prompt without an answer would teach nothing.
        if recipe.training.packing {
            throw conflict("a packed row has no single safety label, so the classification would never train; set training.packing: false")
        }
    }
}
