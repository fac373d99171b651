import Foundation

/// Where a recipe value came from: a file position, or a `--set` override.
///
/// Every value keeps its location through `extends` merging so an error can name
/// the file and line that actually wrote the offending value.
public struct RecipeLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The file as shown to the user, or `--set KEY=VALUE` for an override.
    public let file: String
    /// Line number starting at 1; 0 when the value has no line (overrides, defaults).
    public let line: Int
    /// Column number starting at 1; 0 when unknown.
    public let column: Int
    /// The folder that relative paths written at this location are resolved against.
    public let baseDirectory: URL

    /// Creates a location.
    public init(file: String, line: Int, column: Int, baseDirectory: URL) {
        self.file = file
        self.line = line
        self.column = column
        self.baseDirectory = baseDirectory
    }

    /// Two locations are the same place when file, line and column agree (the base folder is context).
    public static func == (a: RecipeLocation, b: RecipeLocation) -> Bool {
        a.file == b.file && a.line == b.line && a.column == b.column
    }

    /// Hashes the fields that `==` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(file)
        hasher.combine(line)
        hasher.combine(column)
    }

    /// `file:line:column`, or just `file` when there is no line.
    public var description: String {
        line > 0 ? "\(file):\(line):\(column)" : file
    }

    /// A user-facing form of a file URL: relative to the current folder when inside it.
    public static func displayPath(_ url: URL) -> String {
        let path = url.standardizedFileURL.path
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.path
        let prefix = cwd.hasSuffix("/") ? cwd : cwd + "/"
        if path.hasPrefix(prefix) { return String(path.dropFirst(prefix.count)) }
        return path
    }
}
