import ArgumentParser
import Foundation
import Recipes
import Training

/// `safetune recipe`: work with recipe files.
struct RecipeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recipe",
        abstract: "Validate and inspect training recipes.",
        subcommands: [Check.self, Keys.self]
    )

    /// `safetune recipe check`: validate a recipe, its files and its data; print the resolved recipe.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a recipe (keys, types, ranges, files, data lines) and print it fully resolved.",
            discussion: "Exit status: 0 valid, 2 invalid (one line on standard error naming file, line and key)."
        )

        @Argument(help: "The recipe YAML file.")
        var recipe: String

        @Option(name: .customLong("set"), help: ArgumentHelp("Override a key, e.g. training.batch_size=4 (repeatable).",
                                                             valueName: "key.path=value"))
        var overrides: [String] = []

        @Flag(help: "Print the result as JSON.")
        var json = false

        func run() throws {
            do {
                let recipe = try RecipeLoader().load(contentsOf: URL(fileURLWithPath: recipe), overrides: overrides)
                try recipe.checkFiles()
                let data = try RecipeData(recipe: recipe)
                print(render(recipe, train: data.train, eval: data.eval), terminator: "")
            } catch let error as RecipeError {
                throw fail(error.description)
            } catch let error as DatasetError {
                throw fail(error.description)
            }
        }

        /// With `--json`, the verdict also goes to standard output as `{"valid": false, "error": ...}`.
        private func fail(_ message: String) -> ExitCode {
            if json {
                print(CanonicalValue.object([("valid", .bool(false)), ("error", .string(message))]).jsonText(), terminator: "")
            }
            return CommandFailure.report(message)
        }

        private func render(_ recipe: Recipe, train: Dataset, eval: Dataset) -> String {
            func files(_ dataset: Dataset) -> CanonicalValue {
                .list(dataset.files.map { file in
                    .object([("file", .string(file.file)), ("sha256", .string(file.sha256)), ("bytes", .int(file.bytes)),
                             ("examples", .int(file.examples)), ("benign", .int(file.benign)),
                             ("malicious", .int(file.malicious))])
                })
            }
            let summary = CanonicalValue.object([
                ("valid", .bool(true)),
                ("recipe_sha256", .string(recipe.sha256)),
                ("files", .list(recipe.files.map { .string(RecipeLocation.displayPath($0)) })),
                ("overrides", .list(recipe.overrides.map { .string($0) })),
                ("train_data", files(train)),
                ("eval_data", files(eval)),
                ("recipe", recipe.canonicalValue),
            ])
            if json { return summary.jsonText() }
            var out = "# resolved recipe (sha256 \(recipe.sha256))\n"
            out += recipe.canonicalValue.yamlText()
            out += "# data\n"
            for file in train.files + eval.files {
                out += "#   \(file.file): \(file.examples) examples (\(file.benign) benign, \(file.malicious) malicious), sha256 \(file.sha256)\n"
            }
            return out
        }
    }

    /// `safetune recipe keys`: the documented key table (the source of docs/recipes.md).
    struct Keys: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every recipe key with its type, default and range.")

        @Flag(help: "Print the keys as JSON.")
        var json = false

        func run() {
            if json {
                let keys = RecipeSchema.keys.map { key in
                    CanonicalValue.object([("path", .string(key.path)), ("type", .string(key.type)),
                                           ("default", .string(key.defaultValue)), ("valid", .string(key.valid)),
                                           ("meaning", .string(key.meaning))])
                }
                print(CanonicalValue.list(keys).jsonText(), terminator: "")
            } else {
                print(RecipeSchema.markdownTable(), terminator: "")
            }
        }
    }
}
