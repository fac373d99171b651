import Engine
import Foundation
import Testing
@testable import Checkpoints

@Suite struct SafetensorsTests {
    /// Builds a safetensors image from a header object and raw data bytes.
    static func image(_ header: [String: Any], data: [UInt8]) throws -> Data {
        let json = try JSONSerialization.data(withJSONObject: header)
        var length = UInt64(json.count).littleEndian
        var out = Data(bytes: &length, count: 8)
        out.append(json)
        out.append(contentsOf: data)
        return out
    }

    @Test func writerAndReaderRoundTrip() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.safetensors")
        let tensors = ["b": Tensor(shape: [3], scalars: [1, 2, 3]), "a.weight": Tensor(shape: [2, 2], scalars: [-1, 0.5, 7, 1e-8]),
                       "empty": Tensor(zeros: [0, 4])]
        try SafetensorsWriter.write(tensors, metadata: ["note": "x"], to: url)
        let file = try SafetensorsFile(contentsOf: url)
        #expect(file.names == ["a.weight", "b", "empty"])
        #expect(file.metadata == ["note": "x", "format": "pt"])
        #expect(sameWeights(try file.tensors(), tensors))
        // The header is padded to a multiple of 8 bytes, like the reference writer.
        let raw = try Data(contentsOf: url)
        #expect(raw.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } % 8 == 0)
    }

    @Test func halfAndBFloat16BecomeFloat32() throws {
        // 1.0, -2.0 in F16 (0x3C00, 0xC000); 1.5, -0.25 in BF16 (0x3FC0, 0xBE80).
        let data: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0xC0, 0x3F, 0x80, 0xBE]
        let st = try SafetensorsFile(data: Self.image([
            "h": ["dtype": "F16", "shape": [2], "data_offsets": [0, 4]],
            "b": ["dtype": "BF16", "shape": [2], "data_offsets": [4, 8]],
        ], data: data), source: "mem")
        #expect(try st.tensor("h").scalars == [1, -2])
        #expect(try st.tensor("b").scalars == [1.5, -0.25])
    }

    @Test(arguments: [
        ("overlap", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#),
        ("gap", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#),
        ("trailing", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#),
        ("pastEnd", #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#),
    ])
    func layoutErrors(label: String, header: String) throws {
        let object = try JSONSerialization.jsonObject(with: Data(header.utf8)) as! [String: Any]
        let image = try Self.image(object, data: [UInt8](repeating: 0, count: 8))
        do {
            _ = try SafetensorsFile(data: image, source: label)
            Issue.record("\(label): accepted a broken layout")
        } catch {
            guard case .layout(let file, _) = error else { Issue.record("\(label): expected a layout error, got \(error)"); return }
            #expect(file == label)
        }
    }

    @Test func headerAndEntryErrorsNameFileAndTensor() throws {
        func error(_ data: Data) -> SafetensorsError? {
            do { _ = try SafetensorsFile(data: data, source: "f.safetensors"); return nil } catch { return error }
        }
        #expect(error(Data([1, 2, 3])).map { "\($0)" }?.contains("shorter than the 8-byte") == true)
        var huge = UInt64(200_000_000).littleEndian
        #expect(error(Data(bytes: &huge, count: 8) + Data(count: 16)).map { "\($0)" }?.contains("exceeds") == true)
        var long = UInt64(100).littleEndian
        #expect(error(Data(bytes: &long, count: 8) + Data("{}".utf8)).map { "\($0)" }?.contains("past the end") == true)
        let unknown = try Self.image(["w": ["dtype": "Q4", "shape": [1], "data_offsets": [0, 1]]], data: [0])
        #expect(error(unknown) == .unsupportedDType(file: "f.safetensors", tensor: "w", dtype: "Q4"))
        let badSize = try Self.image(["w": ["dtype": "F32", "shape": [3], "data_offsets": [0, 8]]], data: [UInt8](repeating: 0, count: 8))
        guard case .invalidTensor(_, "w", _)? = error(badSize) else { Issue.record("expected invalidTensor for w"); return }
        let ints = try Self.image(["i": ["dtype": "I32", "shape": [1], "data_offsets": [0, 4]]], data: [1, 0, 0, 0])
        let st = try SafetensorsFile(data: ints, source: "f.safetensors")
        #expect(throws: SafetensorsError.unsupportedDType(file: "f.safetensors", tensor: "i", dtype: "I32")) { try st.tensor("i") }
    }

    /// Found by `safetune-fuzz --target safetensors --seed 7001` (input 207,016): a dtype
    /// holding a line break split the error's description over two lines.
    @Test func namesFromTheFileStayOnOneLine() throws {
        let image = try Self.image(["a\u{2028}b": ["dtype": "F16\nX", "shape": [1], "data_offsets": [0, 2]]], data: [0, 0])
        do {
            _ = try SafetensorsFile(data: image, source: "f.safetensors")
            Issue.record("accepted an unknown dtype")
        } catch {
            #expect(!error.description.contains { $0.isNewline }, "\(error.description)")
            #expect(error.description.contains("unsupported dtype F16\\u{a}X"))
        }
    }

    @Test func shardedModelLoadsThroughIndex() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = ["x": Tensor(shape: [2], scalars: [1, 2])], b = ["y": Tensor(shape: [1], scalars: [3])]
        try SafetensorsWriter.write(a, to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        try SafetensorsWriter.write(b, to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        let index: [String: Any] = ["metadata": ["total_size": 12],
                                    "weight_map": ["x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"]]
        try JSONSerialization.data(withJSONObject: index).write(to: dir.appendingPathComponent(SafetensorsModel.indexFile))
        let loaded = try SafetensorsModel.load(from: dir)
        #expect(sameWeights(loaded, a.merging(b) { x, _ in x }))

        // A shard name that escapes the folder is refused.
        let evil: [String: Any] = ["weight_map": ["x": "../outside.safetensors"]]
        try JSONSerialization.data(withJSONObject: evil).write(to: dir.appendingPathComponent(SafetensorsModel.indexFile))
        #expect(throws: SafetensorsError.self) { try SafetensorsModel.load(from: dir) }
    }
}
