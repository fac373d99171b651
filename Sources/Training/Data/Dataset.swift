import Foundation

/// The examples of several data files, with a provenance digest per file.
public struct Dataset: Sendable {
    /// All examples, file by file, in file order.
    public let examples: [Example]
    /// One digest per file, in the order given.
    public let files: [DataFileDigest]

    /// Reads every file with `reader`; throws the first `DatasetError`.
    public static func load(_ specs: [DataFileSpec], reader: JSONLReader = JSONLReader()) throws -> Dataset {
        var examples: [Example] = []
        var files: [DataFileDigest] = []
        for spec in specs {
            let contents = try reader.read(spec)
            examples += contents.examples
            files.append(DataFileDigest(file: RecipeLocation.displayPath(spec.path.url), sha256: contents.sha256,
                                        bytes: contents.bytes, examples: contents.examples.count,
                                        benign: contents.examples.count { $0.label == .benign },
                                        malicious: contents.examples.count { $0.label == .malicious }))
        }
        return Dataset(examples: examples, files: files)
    }

    /// Reads JSONL files of the library's own making (no recipe names them; errors name the file).
    public static func load(files: [URL]) throws -> Dataset {
        try load(files.map { url in
            DataFileSpec(path: RecipePath(written: url.path, location: RecipeLocation(file: url.path, line: 0, column: 0,
                                                                                      baseDirectory: url.deletingLastPathComponent())))
        })
    }

    /// No examples (a run without evaluation data).
    public static let empty = Dataset(examples: [], files: [])

    /// Examples that carry a label (what the SA-ESS head can learn from).
    public var labelledCount: Int { examples.count { $0.label != nil } }
}
