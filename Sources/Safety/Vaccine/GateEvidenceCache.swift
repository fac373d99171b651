import Checkpoints
import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Variant evidence kept between gates. Variants fine-tuned from a trusted parent
/// (`variants_from: parent`) depend only on the parent's weights, the clean data and the
/// variant settings, so every fine-tune of that parent can reuse them: the gate at the end of
/// a run then costs scoring, not fine-tuning. Only what the share rule and the purifier read
/// is kept (`DeltaStatistics` and the energies, a few MB), not the model-sized updates.
///
/// One JSON file per key, in a folder beside the parent (`<parent>.gate/`), written
/// atomically, so a shipped parent can carry its evidence and concurrent gates never read
/// a half-written file. A file whose key or shape does not match is ignored.
///
/// Gates of several processes on children of one parent (`safetune verify`, the gate of
/// `safetune train`) share the folder: `evidence(for:deadline:log:compute:)` computes a
/// key under an exclusive lock (`flock` on `<key>.lock`, released by the kernel when its
/// holder dies), so the first gate fine-tunes the variants and the others wait for its file
/// instead of repeating the work.
public struct GateEvidenceCache: Sendable, Equatable, Codable {
    /// The folder holding the files.
    public let directory: URL

    /// The cache beside `parent` (a checkpoint or GGUF file).
    public init(besideParent parent: URL) {
        directory = parent.deletingPathExtension().appendingPathExtension("gate")
    }

    /// What identifies a parent's function: its weights digest and, when it carries LoRA
    /// adapters (merged before variants are fine-tuned from it), theirs.
    public static func parentIdentity(weightsSHA256: String, adapters group: TensorGroup?) -> String {
        var adapters: [String: Tensor] = [:]
        for (path, group) in group?.groups ?? [:] {
            for (name, tensor) in group.tensors { adapters["\(path)/\(name)"] = tensor }
        }
        return adapters.isEmpty ? weightsSHA256 : weightsSHA256 + "+" + TensorDigest.canonical(adapters)
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

    /// The stored evidence for `key` (second value true), or `compute`'s, stored for the next
    /// gate. `compute` runs with the key's lock held; a gate that finds the lock taken logs
    /// it once, waits until `deadline` (then throws `VaccineError.timeout` naming its seconds), and reads the
    /// file the holder wrote. A folder where no lock can be made (read-only) is used without
    /// one; a file that cannot be stored is logged, never thrown: the cache only saves time.
    public func evidence(for key: String, deadline: (Date, seconds: Double), log: (String) -> Void,
                         compute: () throws -> VariantEvidence) throws -> (VariantEvidence, cached: Bool) {
        if let found = evidence(for: key) { return (found, true) }
        let lock = try Lock(directory: directory, key: key, deadline: deadline, log: log)
        defer { lock?.release() }
        if let found = evidence(for: key) { return (found, true) }
        let computed = try compute()
        do { try store(computed, for: key) } catch { log("the variants could not be kept in \(directory.path): \(error)") }
        return (computed, false)
    }

    /// An exclusive `flock` on `<key>.lock` in the cache folder.
    private final class Lock {
        private let fd: Int32

        /// Nil when the lock file cannot be made (then the caller goes on without it).
        init?(directory: URL, key: String, deadline: (Date, seconds: Double), log: (String) -> Void) throws {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let path = directory.appendingPathComponent("\(key).lock").path
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return nil }
            var waiting = false
            while flock(fd, LOCK_EX | LOCK_NB) != 0 {
                guard errno == EWOULDBLOCK || errno == EINTR else { close(fd); return nil }
                if !waiting {
                    log("another gate is fine-tuning the same variants of this parent (\(path)); waiting for its result")
                    waiting = true
                }
                if Date() > deadline.0 {
                    close(fd)
                    throw VaccineError.timeout(phase: "waiting for another gate's variants (\(path))", seconds: deadline.seconds)
                }
                usleep(100_000)
            }
        }

        func release() { close(fd) }  // closing the descriptor releases the flock
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
