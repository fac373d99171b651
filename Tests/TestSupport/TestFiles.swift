import Foundation

/// A throwaway folder of recipe and data files for one test, removed with the last
/// reference to it (keep the value alive while its files are in use).
public final class TestFiles {
    public let root: URL

    public init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("safetune-training-\(UUID().uuidString)").standardizedFileURL
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Writes `text` to `name` (folders created) and returns its URL.
    @discardableResult
    public func write(_ name: String, _ text: String) throws -> URL {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return url
    }

    /// The display form of a file in this folder (absolute: temp folders are outside the working folder).
    public func path(_ name: String) -> String { root.appendingPathComponent(name).path }

    /// A minimal valid recipe body.
    public static let minimal = """
        model:
          base: base.h5
        data:
          train: [train.jsonl]
        training:
          epochs: 1

        """
}
