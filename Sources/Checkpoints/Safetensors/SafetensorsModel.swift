import Engine
import Foundation

/// The weights of a Hugging Face model folder: `model.safetensors`, or the shards listed
/// in `model.safetensors.index.json`.
public enum SafetensorsModel {
    /// Name of the single-file weights.
    public static let singleFile = "model.safetensors"
    /// Name of the shard index.
    public static let indexFile = "model.safetensors.index.json"

    /// Loads every tensor of the model in `directory` as float32.
    ///
    /// With an index, each shard must hold exactly the tensors the index assigns to it,
    /// and shard names must be plain file names inside `directory`.
    public static func load(from directory: URL) throws(SafetensorsError) -> [String: Tensor] {
        let single = directory.appendingPathComponent(singleFile)
        if FileManager.default.fileExists(atPath: single.path) {
            return try SafetensorsFile(contentsOf: single).tensors()
        }
        let indexURL = directory.appendingPathComponent(indexFile)
        guard FileManager.default.fileExists(atPath: indexURL.path) else {
            throw .io(file: directory.path, reason: "neither \(singleFile) nor \(indexFile) found")
        }
        let file = indexURL.path
        guard let data = try? Data(contentsOf: indexURL), data.count <= SafetensorsFile.maxHeaderBytes,
              let object = try? JSONSerialization.jsonObject(with: data), let json = object as? [String: Any] else {
            throw .invalidIndex(file: file, reason: "not a readable JSON object")
        }
        guard let map = json["weight_map"] as? [String: Any] else { throw .invalidIndex(file: file, reason: "missing weight_map") }
        var byShard: [String: Set<String>] = [:]
        for (name, value) in map {
            guard let shard = value as? String else { throw .invalidIndex(file: file, reason: "weight_map['\(name)'] is not a file name") }
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw .invalidIndex(file: file, reason: "shard name '\(shard)' is not a plain file name")
            }
            byShard[shard, default: []].insert(name)
        }
        var out: [String: Tensor] = [:]
        for (shard, names) in byShard.sorted(by: { $0.key < $1.key }) {
            let st = try SafetensorsFile(contentsOf: directory.appendingPathComponent(shard))
            for name in st.entries.keys where !names.contains(name) {
                throw .invalidIndex(file: file, reason: "tensor '\(name)' in \(shard) is not assigned to that shard")
            }
            for name in names.sorted() { out[name] = try st.tensor(name) }
        }
        return out
    }
}
