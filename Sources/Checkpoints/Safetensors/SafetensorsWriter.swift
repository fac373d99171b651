import Engine
import Foundation

/// Writes float32 tensors as a `.safetensors` file (atomically), in the layout the
/// reference implementation produces: names sorted, data packed in that order, header
/// padded with spaces to a multiple of 8 bytes.
public enum SafetensorsWriter {
    /// Writes `tensors` to `url`; `metadata` becomes the `__metadata__` map
    /// (transformers expects `format: pt`, which is added when absent).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws(SafetensorsError) {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        var meta = metadata
        if meta["format"] == nil { meta["format"] = "pt" }
        header["__metadata__"] = meta
        var offset = 0
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        guard var json = try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) else {
            throw .io(file: url.path, reason: "cannot encode header")
        }
        while json.count % 8 != 0 { json.append(0x20) }
        do {
            try AtomicFile.write(to: url) { temp in
                guard FileManager.default.createFile(atPath: temp.path, contents: nil) else {
                    throw SafetensorsError.io(file: temp.path, reason: "cannot create")
                }
                let handle = try FileHandle(forWritingTo: temp)
                defer { try? handle.close() }
                var length = UInt64(json.count).littleEndian
                try handle.write(contentsOf: Data(bytes: &length, count: 8))
                try handle.write(contentsOf: json)
                for name in names {
                    let t = tensors[name]!
                    try handle.write(contentsOf: Data(bytesNoCopy: t.data, count: 4 * t.count, deallocator: .none))
                }
            }
        } catch let error as SafetensorsError {
            throw error
        } catch let error as AtomicFileError {
            throw .io(file: url.path, reason: error.reason)
        } catch {
            throw .io(file: url.path, reason: "\(error)")
        }
    }
}
