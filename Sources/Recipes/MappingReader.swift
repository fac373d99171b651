import Foundation
import Training

/// Reads typed values out of one recipe mapping, turning every problem into a
/// `RecipeError` that names the file, line and full key path.
///
/// Unknown keys are reported as soon as the reader is made, so a typo is the first
/// thing the author hears about, with a did-you-mean from the allowed keys.
struct MappingReader {
    /// Dotted path of this mapping ("" for the root).
    let path: String
    /// Location of the mapping (or of its parent when the section is absent).
    let location: RecipeLocation
    private let entries: [RecipeNode.Entry]

    init(_ node: RecipeNode?, path: String, allowed: [String], parent: RecipeLocation) throws {
        self.path = path
        guard let node else {
            location = parent
            entries = []
            return
        }
        location = node.location
        switch node.kind {
        case .null:
            entries = []
        case let .mapping(list):
            entries = list
        default:
            throw RecipeError.wrongType(node.location, keyPath: path, expected: "a mapping", got: node.summary)
        }
        for entry in entries where !allowed.contains(entry.key) {
            let suggestion = EditDistance.suggestion(for: entry.key, among: allowed)
            throw RecipeError.unknownKey(entry.keyLocation, keyPath: Self.join(path, entry.key),
                                         suggestion: suggestion.map { Self.join(path, $0) })
        }
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// Full dotted path of `key`.
    func full(_ key: String) -> String { Self.join(path, key) }

    /// The raw value of `key`; nil when absent or null.
    func node(_ key: String) -> RecipeNode? {
        guard let value = entries.last(where: { $0.key == key })?.value else { return nil }
        if case .null = value.kind { return nil }
        return value
    }

    /// Whether `key` has a (non-null) value.
    func has(_ key: String) -> Bool { node(key) != nil }

    /// The location of `key`'s value, or of the mapping when absent.
    func location(of key: String) -> RecipeLocation { node(key)?.location ?? location }

    /// A nested reader for the mapping under `key`.
    func section(_ key: String, allowed: [String]) throws -> MappingReader {
        try MappingReader(node(key), path: full(key), allowed: allowed, parent: location)
    }

    // MARK: scalars

    func scalarText(_ node: RecipeNode, key: String, expected: String) throws -> String {
        guard case let .scalar(text, _) = node.kind else {
            throw RecipeError.wrongType(node.location, keyPath: key, expected: expected, got: node.summary)
        }
        return text
    }

    func int(_ key: String, default value: Int, range: ValueRange) throws -> Int {
        try optionalInt(key, range: range) ?? value
    }

    func optionalInt(_ key: String, range: ValueRange) throws -> Int? {
        guard let node = node(key) else { return nil }
        let text = try scalarText(node, key: full(key), expected: "an integer")
        guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
            throw RecipeError.wrongType(node.location, keyPath: full(key), expected: "an integer", got: node.summary)
        }
        guard range.contains(Double(value)) else {
            throw RecipeError.outOfRange(node.location, keyPath: full(key), value: text, range: range.description)
        }
        return value
    }

    func double(_ key: String, default value: Double, range: ValueRange) throws -> Double {
        try optionalDouble(key, range: range) ?? value
    }

    func optionalDouble(_ key: String, range: ValueRange) throws -> Double? {
        guard let node = node(key) else { return nil }
        return try Self.number(node, keyPath: full(key), range: range)
    }

    static func number(_ node: RecipeNode, keyPath: String, range: ValueRange) throws -> Double {
        guard case let .scalar(text, _) = node.kind else {
            throw RecipeError.wrongType(node.location, keyPath: keyPath, expected: "a number", got: node.summary)
        }
        let lowered = text.lowercased()
        guard let value = Double(text), !lowered.contains("nan"), !lowered.contains("inf") else {
            throw RecipeError.wrongType(node.location, keyPath: keyPath, expected: "a number", got: node.summary)
        }
        guard range.contains(value) else {
            throw RecipeError.outOfRange(node.location, keyPath: keyPath, value: text, range: range.description)
        }
        return value
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let node = node(key) else { return value }
        let text = try scalarText(node, key: full(key), expected: "true or false")
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            throw RecipeError.wrongType(node.location, keyPath: full(key), expected: "true or false", got: node.summary)
        }
    }

    func optionalString(_ key: String) throws -> String? {
        guard let node = node(key) else { return nil }
        let text = try scalarText(node, key: full(key), expected: "text")
        guard !text.isEmpty else {
            throw RecipeError.wrongType(node.location, keyPath: full(key), expected: "non-empty text", got: "''")
        }
        return text
    }

    func string(_ key: String, default value: String) throws -> String {
        try optionalString(key) ?? value
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, default value: T) throws -> T where T.RawValue == String {
        guard let node = node(key) else { return value }
        return try Self.choice(node, keyPath: full(key), as: T.self)
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ node: RecipeNode, keyPath: String, as type: T.Type) throws -> T
    where T.RawValue == String {
        let choices = T.allCases.map(\.rawValue)
        guard case let .scalar(text, _) = node.kind else {
            throw RecipeError.wrongType(node.location, keyPath: keyPath,
                                        expected: "one of \(choices.joined(separator: ", "))", got: node.summary)
        }
        guard let parsed = T(rawValue: text) else {
            throw RecipeError.invalidChoice(node.location, keyPath: keyPath, value: text, choices: choices,
                                            suggestion: EditDistance.suggestion(for: text, among: choices))
        }
        return parsed
    }

    func path(_ key: String) throws -> RecipePath? {
        guard let node = node(key) else { return nil }
        return try Self.path(node, keyPath: full(key))
    }

    static func path(_ node: RecipeNode, keyPath: String) throws -> RecipePath {
        guard case let .scalar(text, _) = node.kind, !text.isEmpty else {
            throw RecipeError.wrongType(node.location, keyPath: keyPath, expected: "a path", got: node.summary)
        }
        return RecipePath(written: text, location: node.location)
    }

    // MARK: lists

    /// The items of a list value; a missing key gives nil.
    func list(_ key: String) throws -> [RecipeNode]? {
        guard let node = node(key) else { return nil }
        guard case let .sequence(items) = node.kind else {
            throw RecipeError.wrongType(node.location, keyPath: full(key), expected: "a list", got: node.summary)
        }
        return items
    }

    func stringList(_ key: String, default value: [String]) throws -> [String] {
        guard let items = try list(key) else { return value }
        return try items.enumerated().map { index, item in
            let text = try scalarText(item, key: "\(full(key))[\(index)]", expected: "text")
            guard !text.isEmpty else {
                throw RecipeError.wrongType(item.location, keyPath: "\(full(key))[\(index)]", expected: "non-empty text", got: "''")
            }
            return text
        }
    }
}
