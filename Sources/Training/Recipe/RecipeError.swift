import Foundation

/// Everything that can be wrong with a recipe, each naming the place at fault.
///
/// `description` is always one line: `file:line:column: key.path: problem`.
public enum RecipeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The recipe file could not be read (missing, unreadable, too large, not UTF-8).
    case unreadable(file: String, reason: String)
    /// The YAML itself is malformed.
    case syntax(RecipeLocation, message: String)
    /// A key the schema does not know, with the closest known key when one is near.
    case unknownKey(RecipeLocation, keyPath: String, suggestion: String?)
    /// A value of the wrong type, e.g. text where an integer belongs.
    case wrongType(RecipeLocation, keyPath: String, expected: String, got: String)
    /// A value outside its documented range.
    case outOfRange(RecipeLocation, keyPath: String, value: String, range: String)
    /// A value that is not one of the allowed choices.
    case invalidChoice(RecipeLocation, keyPath: String, value: String, choices: [String], suggestion: String?)
    /// A required key is absent.
    case missingKey(RecipeLocation, keyPath: String)
    /// Two or more settings that cannot go together.
    case conflict(RecipeLocation, keyPath: String, message: String)
    /// A path in the recipe names a file or folder that does not exist.
    case missingFile(RecipeLocation, keyPath: String, path: String)
    /// `extends` leads back to a file already in the chain.
    case extendsCycle(chain: [String])
    /// A `--set` argument that is malformed or names no recipe key.
    case badOverride(argument: String, reason: String)

    /// One readable line naming the file, line and key at fault.
    public var description: String { Self.oneLine(message) }

    /// Values quoted from the file can hold line breaks (YAML block scalars, escapes):
    /// control characters and line separators are written as escapes.
    static func oneLine(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.properties.generalCategory == .control || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    private var message: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read recipe: \(reason)"
        case let .syntax(location, message):
            return "\(location): invalid YAML: \(message)"
        case let .unknownKey(location, keyPath, suggestion):
            let hint = suggestion.map { "; did you mean '\($0)'?" } ?? ""
            return "\(location): unknown key '\(keyPath)'\(hint)"
        case let .wrongType(location, keyPath, expected, got):
            return "\(location): \(keyPath): expected \(expected), got \(got)"
        case let .outOfRange(location, keyPath, value, range):
            return "\(location): \(keyPath): \(value) is out of range (\(range))"
        case let .invalidChoice(location, keyPath, value, choices, suggestion):
            let hint = suggestion.map { "; did you mean '\($0)'?" } ?? ""
            return "\(location): \(keyPath): '\(value)' is not one of \(choices.joined(separator: ", "))\(hint)"
        case let .missingKey(location, keyPath):
            return "\(location): missing required key '\(keyPath)'"
        case let .conflict(location, keyPath, message):
            return "\(location): \(keyPath): \(message)"
        case let .missingFile(location, keyPath, path):
            return "\(location): \(keyPath): no such file '\(path)'"
        case let .extendsCycle(chain):
            return "\(chain.first ?? "recipe"): extends cycle: \(chain.joined(separator: " -> "))"
        case let .badOverride(argument, reason):
            return "--set \(argument): \(reason)"
        }
    }
}
