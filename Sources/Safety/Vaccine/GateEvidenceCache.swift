import Checkpoints
import Engine
import Foundation

/// Variant evidence kept between gates. Variants fine-tuned from a trusted parent
/// (`variants_from: parent`) depend only on the parent's weights, the clean data and the
/// variant settings, so every fine-tune of that parent can reuse them: the gate at the end of
/// a run then costs scoring, not fine-tuning. Only what the share rule and the purifier read
/// is kept (`DeltaStatistics` and the energies, a few MB), not the model-sized updates.
///
/// One JSON file per key, in a folder beside the parent (`<parent>.gate/`), written
/// atomically, so a shipped parent can carry its evidence and concurrent gates never read
/// a half-written file. A file whose key or shape does not match is ignored.
public struct GateEvidenceCache: Sendable, Equatable, Codable {
    /// The folder holding the files.
    public let directory: URL

    /// The cache beside `parent` (a checkpoint or GGUF file).
    public init(besideParent parent: URL) {
        directory = parent.deletingPathExtension().appendingPathExtension("gate")
    }

    /// A cache in `directory`.
    public init(directory: URL) { self.directory = directory }

    /// What identifies a parent's function: its weights digest and, when it carries LoRA
    /// adapters (merged before variants are fine-tuned from it), theirs.
    public static func parentIdentity(_ parent: Checkpoint) -> String {
        var adapters: [String: Tensor] = [:]
        for (path, group) in parent.adapters?.groups ?? [:] {
            for (name, tensor) in group.tensors { adapters["\(path)/\(name)"] = tensor }
        }
        return adapters.isEmpty ? parent.weightsSHA256 : parent.weightsSHA256 + "+" + TensorDigest.canonical(adapters)
    }

    /// The key of evidence from variants of the parent `parentSHA256` (`parentIdentity`),
    /// fine-tuned with `settings` on `clean`, over `modules`.
    public static func key(parentSHA256: String, settings: VariantSettings, clean: [CleanSample], modules: [UnitModule]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var text = Data("gate-evidence v1\nparent \(parentSHA256)\nmodules \(modules.map(\.rawValue).joined(separator: ","))\n".utf8)
        text.append(try encoder.encode(settings))
        text.append(try encoder.encode(clean))
        return TensorDigest.sha256(bytes: text)
    }

    /// The stored evidence for `key`, or nil when there is none (or it cannot be read).
    public func evidence(for key: String) -> VariantEvidence? {
        guard let data = try? Data(contentsOf: url(key)), let record = try? JSONDecoder().decode(Record.self, from: data),
              record.key == key, record.cleanEnergies.count == record.statistics.pairs,
              record.backdooredEnergies.count == record.statistics.pairs else { return nil }
        return VariantEvidence(statistics: record.statistics, cleanEnergies: record.cleanEnergies,
                               backdooredEnergies: record.backdooredEnergies, poisons: record.poisons, seconds: record.seconds)
    }

    /// Stores `evidence` under `key`, atomically.
    public func store(_ evidence: VariantEvidence, for key: String) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let record = Record(key: key, statistics: evidence.statistics, cleanEnergies: evidence.cleanEnergies,
                            backdooredEnergies: evidence.backdooredEnergies, poisons: evidence.poisons, seconds: evidence.seconds)
        let data = try JSONEncoder().encode(record)
        try AtomicFile.write(to: url(key)) { try data.write(to: $0) }
    }

    /// The file of `key`.
    public func url(_ key: String) -> URL { directory.appendingPathComponent("\(key).json") }

    private struct Record: Codable {
        var key: String
        var statistics: DeltaStatistics
        var cleanEnergies: [[[Double]]]
        var backdooredEnergies: [[[Double]]]
        var poisons: [Poison]
        var seconds: Double
    }
}
