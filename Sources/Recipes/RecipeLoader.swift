import Foundation
import Training

/// Reads a recipe file, follows its `extends` chain, applies `--set` overrides and
/// validates the result into a `Recipe`. Every failure is a `RecipeError`.
public struct RecipeLoader: Sendable {
    /// Largest recipe file accepted, in bytes.
    public var maxFileBytes: Int
    /// Longest `extends` chain accepted.
    public var maxExtendsDepth: Int

    /// Creates a loader with the given limits.
    public init(maxFileBytes: Int = 1 << 20, maxExtendsDepth: Int = 32) {
        self.maxFileBytes = maxFileBytes
        self.maxExtendsDepth = maxExtendsDepth
    }

    /// Loads and validates the recipe at `url` with `--set` arguments applied in order.
    public func load(contentsOf url: URL, overrides: [String] = []) throws -> Recipe {
        let parsed = try overrides.map { try RecipeOverride($0) }
        return try load(contentsOf: url, overrides: parsed)
    }

    /// Loads and validates the recipe at `url` with parsed overrides applied in order.
    public func load(contentsOf url: URL, overrides: [RecipeOverride]) throws -> Recipe {
        let file = url.standardizedFileURL
        var chain: [URL] = []
        var root = try resolve(file, chain: &chain)
        for override in overrides {
            if let blocked = root.set(path: override.keyPath[...], value: override.value) {
                throw RecipeError.badOverride(argument: override.argument,
                                              reason: "'\(blocked)' in the recipe is not a mapping")
            }
        }
        return try Recipe(root: root, files: chain, overrides: overrides.map(\.argument))
    }

    /// Loads and validates a recipe given as YAML text, as if it were the file `name` in
    /// `directory` (its relative paths and `extends` resolve against `directory`): lets code
    /// describe a run in memory, such as the BD-VAX variant fine-tunes.
    public func load(yaml: String, directory: URL, name: String = "inline-recipe.yaml",
                     overrides: [RecipeOverride] = []) throws -> Recipe {
        let file = directory.appendingPathComponent(name).standardizedFileURL
        var chain: [URL] = [file]
        var root = try resolve(text: yaml, file: file, chain: &chain)
        for override in overrides {
            if let blocked = root.set(path: override.keyPath[...], value: override.value) {
                throw RecipeError.badOverride(argument: override.argument,
                                              reason: "'\(blocked)' in the recipe is not a mapping")
            }
        }
        return try Recipe(root: root, files: chain, overrides: overrides.map(\.argument))
    }

    /// The merged (unvalidated) tree of `file` and its ancestors; `chain` collects the files, child first.
    private func resolve(_ file: URL, chain: inout [URL]) throws -> RecipeNode {
        let identity = file.resolvingSymlinksInPath().path
        if chain.contains(where: { $0.resolvingSymlinksInPath().path == identity }) {
            throw RecipeError.extendsCycle(chain: (chain + [file]).map(RecipeLocation.displayPath))
        }
        if chain.count >= maxExtendsDepth {
            throw RecipeError.unreadable(file: RecipeLocation.displayPath(file),
                                         reason: "extends chain longer than \(maxExtendsDepth) files")
        }
        chain.append(file)
        let text = try read(file, display: RecipeLocation.displayPath(file))
        return try resolve(text: text, file: file, chain: &chain)
    }

    /// The merged tree of the recipe text `text` written as `file` (already in `chain`).
    private func resolve(text: String, file: URL, chain: inout [URL]) throws -> RecipeNode {
        let display = RecipeLocation.displayPath(file)
        let node = try RecipeNode.parse(yaml: text, file: display, baseDirectory: file.deletingLastPathComponent())
        guard case let .mapping(entries) = node.kind else {
            throw RecipeError.wrongType(node.location, keyPath: "(top level)", expected: "a mapping of sections", got: node.summary)
        }
        guard let parentNode = node["extends"] else { return node }
        if case .null = parentNode.kind { return node }
        let parentPath = try MappingReader.path(parentNode, keyPath: "extends")
        guard parentPath.exists(directory: false) else {
            throw RecipeError.missingFile(parentNode.location, keyPath: "extends", path: parentPath.written)
        }
        let parent = try resolve(parentPath.url, chain: &chain)
        let own = RecipeNode(kind: .mapping(entries.filter { $0.key != "extends" }), location: node.location)
        return RecipeNode.merge(parent: parent, child: own)
    }

    private func read(_ file: URL, display: String) throws -> String {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        } catch {
            throw RecipeError.unreadable(file: display, reason: "no such file")
        }
        // A device or FIFO reports size 0 and could be read forever (extends: /dev/zero).
        guard attributes[.type] as? FileAttributeType == .typeRegular else {
            throw RecipeError.unreadable(file: display, reason: "not a regular file")
        }
        if let size = attributes[.size] as? NSNumber, size.intValue > maxFileBytes {
            throw RecipeError.unreadable(file: display, reason: "larger than \(maxFileBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw RecipeError.unreadable(file: display, reason: "cannot open")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecipeError.unreadable(file: display, reason: "not valid UTF-8")
        }
        return text
    }
}
