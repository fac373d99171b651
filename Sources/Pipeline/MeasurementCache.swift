import Checkpoints
import Foundation
import Safety

/// A run's "before training" measurement, kept beside its parent. Greedy decoding makes it
/// depend only on the parent file, the evaluation prompts and the measurement's settings,
/// so every fine-tune of one parent (the quickstart's of the shipped aligned model) can
/// reuse it instead of decoding the same answers again.
///
/// One JSON file per key in `<parent>.measure/`, written atomically. A file that cannot be
/// read or whose key differs is ignored; one that cannot be written is not an error: the
/// cache only saves time.
struct MeasurementCache {
    /// The folder holding the files.
    let directory: URL
    /// What identifies the measurement (see `key`).
    let key: String

    /// The cache for measuring `parent` (a checkpoint or GGUF file; nil for a folder, whose
    /// contents have no single digest) on `set` with these settings.
    init?(parent: URL, set: EvaluationSet, suites: [String], template: String, maxTokens: Int, guarded: Bool) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isFolder), !isFolder.boolValue else { return nil }
        directory = parent.deletingPathExtension().appendingPathExtension("measure")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // The file's bytes cover an adapter checkpoint's signal head and calibrated threshold.
        // A change to how suites decode or judge must bump "v1" (or the SafeTune version).
        var text = Data("""
            suite-measurement v1
            parent \(TensorDigest.hex(try SHA256.hash(file: parent)))
            safetune \(SafeTuneVersion.current)
            suites \(suites.joined(separator: ",")) template \(template) max_tokens \(maxTokens) guarded \(guarded)

            """.utf8)
        text.append(try encoder.encode(set.all))
        key = TensorDigest.sha256(bytes: text)
    }

    private var url: URL { directory.appendingPathComponent("\(key).json") }

    /// The stored measurement, or nil.
    func measurement() -> SuiteMeasurement? {
        guard let data = try? Data(contentsOf: url), let record = try? JSONDecoder().decode(Record.self, from: data),
              record.key == key else { return nil }
        return record.measurement
    }

    /// Stores `measurement`; returns why it could not be, or nil.
    func store(_ measurement: SuiteMeasurement) -> String? {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let data = try JSONEncoder().encode(Record(key: key, measurement: measurement))
            try AtomicFile.write(to: url) { try data.write(to: $0) }
            return nil
        } catch {
            return "the measurement could not be kept in \(directory.path): \(error)"
        }
    }

    private struct Record: Codable {
        var key: String
        var measurement: SuiteMeasurement
    }
}
