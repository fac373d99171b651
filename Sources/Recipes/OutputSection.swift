import Foundation
import Training

/// `output`: where checkpoints and reports go.
public struct OutputSection: Sendable, Equatable {
    /// Run name.
    public let name: String
    /// Output folder.
    public let dir: RecipePath
    /// Save every this many steps; 0 means only at the end.
    public let saveEvery: Int
    /// Periodic checkpoints to keep; 0 keeps all.
    public let keepLast: Int
    /// Whether report.html is written.
    public let report: Bool

    init(reading r: MappingReader, defaultName: String, recipeDirectory: URL) throws {
        let nameNode = r.node("name")
        name = try r.string("name", default: defaultName)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".unicodeScalars)
        if !name.unicodeScalars.allSatisfy(allowed.contains) || name.hasPrefix(".") {
            throw RecipeError.wrongType(nameNode?.location ?? r.location, keyPath: r.full("name"),
                                        expected: "a name of letters, digits, '.', '_' or '-'", got: "'\(name)'")
        }
        let rootLocation = RecipeLocation(file: r.location.file, line: 0, column: 0, baseDirectory: recipeDirectory)
        dir = try r.path("dir") ?? RecipePath(written: "runs/\(name)", location: rootLocation)
        saveEvery = try r.int("save_every", default: 0, range: .atLeast(0))
        keepLast = try r.int("keep_last", default: 3, range: .atLeast(0))
        report = try r.bool("report", default: true)
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("name", .string(name)), ("dir", .string(dir.relative(to: root))), ("save_every", .int(saveEvery)),
                 ("keep_last", .int(keepLast)), ("report", .bool(report))])
    }
}
