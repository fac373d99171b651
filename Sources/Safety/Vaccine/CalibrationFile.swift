import Checkpoints
import Foundation

/// A gate stage's calibration kept on disk between verifies. It depends only on the parent,
/// the clean data, the probes and the stage's settings (digested into a key), so a pipeline
/// verifying many fine-tunes of one parent measures it once. A file made from other inputs
/// is an error naming it, never silently replaced. A folder (an existing one, or a path
/// ending in `/`) keeps one file per key, `<what>-<key>.json`, so fine-tunes in several
/// regimes share it.
struct CalibrationFile {
    let url: URL
    /// What the file holds, for errors ("scan calibration").
    let what: String

    /// `url` itself, or the key's file when `url` names a folder.
    func file(key: String) throws -> URL {
        var isFolder: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder)
        guard (exists && isFolder.boolValue) || (!exists && url.hasDirectoryPath) else { return url }
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.appendingPathComponent(what.replacingOccurrences(of: " ", with: "-") + "-" + key + ".json")
    }

    private struct Saved<Value: Codable>: Codable {
        var key: String
        var calibration: Value
    }

    /// What identifies the parent in a key: its weights and any adapters merged into them
    /// (`GateEvidenceCache.parentIdentity`), so adapter parents on one base differ.
    static func parentIdentity(_ parent: ModelBundle) -> String {
        GateEvidenceCache.parentIdentity(weightsSHA256: parent.weightsSHA256 ?? "", adapters: parent.checkpoint.adapters)
    }

    /// SHA-256 of `material`'s sorted-key JSON. Material holds inputs only, never values
    /// computed from them (measured directions differ in their last bits across CPUs), so a
    /// calibration kept beside a shipped parent is found on every machine.
    static func key(_ material: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return TensorDigest.sha256(bytes: try encoder.encode(material))
    }

    /// The saved value when its key is `key`; else `measure()`, saved atomically when the file is absent.
    func value<Value: Codable>(key: String, log: (String) -> Void, measure: () throws -> Value) throws -> Value {
        let url = try file(key: key)
        if FileManager.default.fileExists(atPath: url.path) {
            let saved: Saved<Value>
            do { saved = try JSONDecoder().decode(Saved<Value>.self, from: Data(contentsOf: url)) } catch {
                throw VaccineError.unreadable(file: url.path, reason: "not a \(what) (\(error.localizedDescription))")
            }
            guard saved.key == key else {
                throw VaccineError.unreadable(file: url.path, reason: "calibrated for another parent, clean data, probes or settings; delete it to recalibrate")
            }
            log("\(what) read from \(url.path)")
            return saved.calibration
        }
        log("\(what): none kept for these inputs; measuring it (clean fine-tunes of the parent), kept in \(url.path)")
        let value = try measure()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(Saved(key: key, calibration: value)).write(to: url, options: .atomic)
        return value
    }
}
