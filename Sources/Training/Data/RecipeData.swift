import Foundation

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
        if recipe.safety.signal.enabled, train.labelledCount == 0 {
            let file = recipe.files.first.map(RecipeLocation.displayPath) ?? "recipe"
            throw RecipeError.conflict(RecipeLocation(file: file, line: 0, column: 0, baseDirectory: recipe.directory),
                                       keyPath: "safety.signal.enabled",
                                       message: "no training example has a label; set label on a data.train file or per line")
        }
    }
}
