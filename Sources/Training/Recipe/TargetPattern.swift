/// A module-name pattern from `adapters.targets`.
///
/// A pattern matches a module whose dotted name ends with it on a component boundary:
/// `q_proj` matches `model.layers.0.self_attn.q_proj`, `attn.c_proj` matches
/// `transformer.h.3.attn.c_proj` but not `transformer.h.3.mlp.c_proj`. `*` matches any
/// run of characters (dots included) and `?` one character.
public struct TargetPattern: Sendable, Equatable, CustomStringConvertible {
    /// Leaf module names the two model families have; a pattern must be able to match one.
    public static let knownModules = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "gate_proj", "down_proj",
                                      "c_attn", "c_proj", "c_fc", "lm_head"]

    /// The pattern text.
    public let pattern: String
    private let scalars: [Unicode.Scalar]

    /// Validates a pattern: only letters, digits, `_`, `.`, `*`, `?`, no empty components,
    /// and its last component must be able to match a known module name.
    /// Returns nil with a reason (and a suggestion when one is close) when invalid.
    public static func parse(_ text: String) -> (TargetPattern?, reason: String, suggestion: String?) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.*?".unicodeScalars)
        guard !text.isEmpty, text.unicodeScalars.allSatisfy(allowed.contains) else {
            return (nil, "may contain only letters, digits, '_', '.', '*' and '?'", nil)
        }
        let components = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !components.contains(where: \.isEmpty) else { return (nil, "has an empty name component", nil) }
        let last = String(components[components.count - 1])
        let leaf = TargetPattern(last)
        guard knownModules.contains(where: { leaf.matchesWhole(Array($0.unicodeScalars)) }) else {
            return (nil, "matches no module (known: \(knownModules.joined(separator: ", ")))",
                    EditDistance.suggestion(for: last, among: knownModules))
        }
        return (TargetPattern(text), "", nil)
    }

    /// A valid pattern, or nil (`parse` says why).
    public init?(validating text: String) {
        guard let pattern = Self.parse(text).0 else { return nil }
        self = pattern
    }

    private init(_ text: String) {
        pattern = text
        scalars = Array(text.unicodeScalars)
    }

    /// The pattern text.
    public var description: String { pattern }

    /// Whether the pattern selects the module with this dotted name.
    public func matches(module name: String) -> Bool {
        let full = Array(name.unicodeScalars)
        if matchesWhole(full) { return true }
        // Try every suffix that starts right after a dot.
        for (i, scalar) in full.enumerated() where scalar == "." && matchesWhole(Array(full[(i + 1)...])) {
            return true
        }
        return false
    }

    /// Glob match of the whole string (iterative, linear backtracking on the last `*`).
    private func matchesWhole(_ text: [Unicode.Scalar]) -> Bool {
        var p = 0, t = 0, starP = -1, starT = 0
        while t < text.count {
            if p < scalars.count, scalars[p] == "?" || scalars[p] == text[t] {
                p += 1; t += 1
            } else if p < scalars.count, scalars[p] == "*" {
                starP = p; starT = t; p += 1
            } else if starP >= 0 {
                p = starP + 1; starT += 1; t = starT
            } else {
                return false
            }
        }
        while p < scalars.count, scalars[p] == "*" { p += 1 }
        return p == scalars.count
    }
}
