import Foundation
import Training
import Yams

/// A YAML value with the location that wrote it: the untyped tree that `extends`
/// merging and `--set` overrides work on before the schema types it.
struct RecipeNode: Sendable {
    /// One `key: value` pair of a mapping, in file order.
    struct Entry: Sendable {
        var key: String
        var keyLocation: RecipeLocation
        var value: RecipeNode
    }

    /// The shape of the value.
    enum Kind: Sendable {
        /// `~`, `null` or an empty value: in a child recipe it deletes the inherited key.
        case null
        /// Text as written; `quoted` records whether quotes forced it to be a string.
        case scalar(String, quoted: Bool)
        case sequence([RecipeNode])
        case mapping([Entry])
    }

    var kind: Kind
    var location: RecipeLocation

    /// A short human description of the value for "got ..." in errors.
    var summary: String {
        switch kind {
        case .null: return "null"
        case let .scalar(text, _):
            let short = text.count > 40 ? String(text.prefix(40)) + "..." : text
            return "'\(short)'"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    /// The value for `key` when this is a mapping.
    subscript(key: String) -> RecipeNode? {
        guard case let .mapping(entries) = kind else { return nil }
        return entries.last { $0.key == key }?.value
    }

    /// Parses one YAML document; an empty document is an empty mapping.
    static func parse(yaml: String, file: String, baseDirectory: URL) throws -> RecipeNode {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw RecipeError.syntax(location(of: error, file: file, baseDirectory: baseDirectory),
                                     message: message(of: error))
        } catch {
            throw RecipeError.syntax(RecipeLocation(file: file, line: 0, column: 0, baseDirectory: baseDirectory),
                                     message: String(describing: error))
        }
        let top = RecipeLocation(file: file, line: 1, column: 1, baseDirectory: baseDirectory)
        guard let root else { return RecipeNode(kind: .mapping([]), location: top) }
        return try convert(root, file: file, baseDirectory: baseDirectory)
    }

    private static func convert(_ node: Node, file: String, baseDirectory: URL) throws -> RecipeNode {
        let mark = node.mark
        let location = RecipeLocation(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0,
                                      baseDirectory: baseDirectory)
        switch node {
        case let .scalar(scalar):
            let quoted = scalar.style != .plain && scalar.style != .any
            if !quoted, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                return RecipeNode(kind: .null, location: location)
            }
            return RecipeNode(kind: .scalar(scalar.string, quoted: quoted), location: location)
        case let .sequence(sequence):
            let items = try sequence.map { try convert($0, file: file, baseDirectory: baseDirectory) }
            return RecipeNode(kind: .sequence(items), location: location)
        case let .mapping(mapping):
            var entries: [Entry] = []
            for (key, value) in mapping {
                let keyNode = try convert(key, file: file, baseDirectory: baseDirectory)
                guard case let .scalar(name, _) = keyNode.kind else {
                    throw RecipeError.syntax(keyNode.location, message: "a mapping key must be plain text, got \(keyNode.summary)")
                }
                if entries.contains(where: { $0.key == name }) {
                    throw RecipeError.syntax(keyNode.location, message: "duplicate key '\(name)'")
                }
                entries.append(Entry(key: name, keyLocation: keyNode.location,
                                     value: try convert(value, file: file, baseDirectory: baseDirectory)))
            }
            return RecipeNode(kind: .mapping(entries), location: location)
        case let .alias(alias):
            throw RecipeError.syntax(location, message: "unresolved alias '*\(alias.anchor.rawValue)'")
        }
    }

    private static func location(of error: YamlError, file: String, baseDirectory: URL) -> RecipeLocation {
        let mark: Mark?
        switch error {
        case let .scanner(_, _, m, _), let .parser(_, _, m, _), let .composer(_, _, m, _): mark = m
        case let .duplicatedKeysInMapping(_, context): mark = context.mark
        default: mark = nil
        }
        return RecipeLocation(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, baseDirectory: baseDirectory)
    }

    private static func message(of error: YamlError) -> String {
        switch error {
        case let .scanner(context, problem, _, _), let .parser(context, problem, _, _), let .composer(context, problem, _, _):
            if let context { return "\(problem) (\(context.text))" }
            return problem
        case let .duplicatedKeysInMapping(duplicates, _):
            return "duplicate key(s) \(duplicates.sorted().joined(separator: ", "))"
        case let .reader(problem, _, _, _):
            return problem
        default:
            return String(describing: error).split(separator: "\n").first.map(String.init) ?? "unreadable YAML"
        }
    }

    /// Deep merge for `extends`: mappings merge key by key, the child wins everywhere else,
    /// and a child `null` removes the inherited key.
    static func merge(parent: RecipeNode, child: RecipeNode) -> RecipeNode {
        guard case let .mapping(parentEntries) = parent.kind, case let .mapping(childEntries) = child.kind else {
            return child
        }
        var merged = parentEntries
        for entry in childEntries {
            let index = merged.firstIndex { $0.key == entry.key }
            if case .null = entry.value.kind {
                if let index { merged.remove(at: index) }
                continue
            }
            if let index {
                merged[index].value = merge(parent: merged[index].value, child: entry.value)
                merged[index].keyLocation = entry.keyLocation
            } else {
                merged.append(entry)
            }
        }
        return RecipeNode(kind: .mapping(merged), location: child.location)
    }

    /// Sets (or with a null value, removes) the value at `path`, creating mappings on the way.
    /// Returns the first path prefix that exists but is not a mapping, when the path cannot be set.
    mutating func set(path: ArraySlice<String>, value: RecipeNode) -> String? {
        guard let key = path.first else { return nil }
        guard case var .mapping(entries) = kind else { return "" }
        let rest = path.dropFirst()
        let index = entries.firstIndex { $0.key == key }
        if rest.isEmpty {
            if case .null = value.kind {
                if let index { entries.remove(at: index) }
            } else if let index {
                entries[index].value = value
                entries[index].keyLocation = value.location
            } else {
                entries.append(Entry(key: key, keyLocation: value.location, value: value))
            }
        } else {
            var child = index.map { entries[$0].value }
                ?? RecipeNode(kind: .mapping([]), location: value.location)
            if case .null = child.kind { child = RecipeNode(kind: .mapping([]), location: value.location) }
            if let failure = child.set(path: rest, value: value) {
                return failure.isEmpty ? key : key + "." + failure
            }
            if let index { entries[index].value = child } else {
                entries.append(Entry(key: key, keyLocation: value.location, value: child))
            }
        }
        kind = .mapping(entries)
        return nil
    }
}
