import Checkpoints
import Foundation

/// A path written in a recipe, resolved against the folder of the file that wrote it; the
/// name of a pinned base model (`smollm2`) stands for its file in the model cache.
public struct RecipePath: Sendable, Equatable, CustomStringConvertible {
    /// The path exactly as written.
    public let written: String
    /// The absolute location it resolves to.
    public let url: URL
    /// Where it was written (file and line, or the `--set` argument).
    public let location: RecipeLocation

    /// The pinned base model `written` names, if any.
    public var pinned: BaseModel? { BaseModel.named(written) }

    /// Resolves `written` against `location.baseDirectory` (absolute and `~/` paths stay as
    /// they are; a pinned model's name becomes its cached file).
    public init(written: String, location: RecipeLocation) {
        self.written = written
        self.location = location
        if let pinned = BaseModel.named(written) {
            url = pinned.cachedURL()
        } else if written.hasPrefix("/") {
            url = URL(fileURLWithPath: written).standardizedFileURL
        } else if written.hasPrefix("~/") {
            let home = FileManager.default.homeDirectoryForCurrentUser
            url = home.appendingPathComponent(String(written.dropFirst(2))).standardizedFileURL
        } else {
            url = location.baseDirectory.appendingPathComponent(written).standardizedFileURL
        }
    }

    /// The resolved path.
    public var description: String { url.path }

    /// `url` relative to `directory` (with `..` steps where needed), or a pinned model's
    /// name: the machine-independent form used in canonical recipe text.
    public func relative(to directory: URL) -> String {
        if pinned != nil { return written }
        let target = url.standardizedFileURL.pathComponents
        let base = directory.standardizedFileURL.pathComponents
        var common = 0
        while common < min(target.count, base.count), target[common] == base[common] { common += 1 }
        if common <= 1 { return url.path }
        let ups = Array(repeating: "..", count: base.count - common)
        let parts = ups + target[common...]
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    /// Whether the path exists; `directory` asks for a folder, false for a regular file, nil for either.
    public func exists(directory: Bool?) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return false }
        guard let directory else { return true }
        return isDirectory.boolValue == directory
    }
}
