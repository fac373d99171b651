import Foundation
import Training

/// One `--set key.path=value` argument: a dotted schema path and a YAML value
/// (`4`, `false`, `[a, b]`, `null` to remove an inherited key), typed later by the schema.
public struct RecipeOverride: Sendable {
    /// The argument as given.
    public let argument: String
    /// Path components, e.g. `["training", "batch_size"]`.
    public let keyPath: [String]
    let value: RecipeNode

    /// Parses `key.path=value`; relative paths in the value resolve against `baseDirectory`
    /// (the current folder by default). Throws `RecipeError.badOverride`.
    public init(_ argument: String, baseDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) throws {
        self.argument = argument
        guard let equals = argument.firstIndex(of: "=") else {
            throw RecipeError.badOverride(argument: argument, reason: "expected key.path=value")
        }
        let path = String(argument[..<equals]).trimmingCharacters(in: .whitespaces)
        let text = String(argument[argument.index(after: equals)...])
        guard !path.isEmpty else { throw RecipeError.badOverride(argument: argument, reason: "empty key path") }
        if path == "extends" {
            throw RecipeError.badOverride(argument: argument, reason: "extends cannot be overridden")
        }
        let settable = RecipeSchema.settablePaths
        guard settable.contains(path) else {
            let hint = EditDistance.suggestion(for: path, among: settable).map { "; did you mean '\($0)'?" } ?? ""
            throw RecipeError.badOverride(argument: argument, reason: "unknown key '\(path)'\(hint)")
        }
        keyPath = path.split(separator: ".").map(String.init)
        let location = RecipeLocation(file: "--set \(argument)", line: 0, column: 0, baseDirectory: baseDirectory)
        do {
            value = try RecipeNode.parse(yaml: text, file: location.file, baseDirectory: baseDirectory).relocated(to: location)
        } catch let error as RecipeError {
            guard case let .syntax(_, message) = error else { throw error }
            throw RecipeError.badOverride(argument: argument, reason: "invalid YAML value: \(message)")
        }
    }
}

extension RecipeNode {
    /// The same tree with every location replaced, for values that come from the command line.
    func relocated(to location: RecipeLocation) -> RecipeNode {
        switch kind {
        case .null, .scalar:
            return RecipeNode(kind: kind, location: location)
        case let .sequence(items):
            return RecipeNode(kind: .sequence(items.map { $0.relocated(to: location) }), location: location)
        case let .mapping(entries):
            let moved = entries.map { Entry(key: $0.key, keyLocation: location, value: $0.value.relocated(to: location)) }
            return RecipeNode(kind: .mapping(moved), location: location)
        }
    }
}
