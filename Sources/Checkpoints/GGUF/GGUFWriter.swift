import Engine
import Foundation
import Models

/// Writes GGUF version 3 files: metadata, then a tensor table, then each tensor's data
/// at a multiple of the alignment (32), streamed to disk one tensor at a time.
struct GGUFWriter {
    static let alignment = 32

    /// One tensor to write: GGUF name, row-major values, and the type to store.
    struct Entry {
        let name: String
        let tensor: Tensor
        let type: GGMLType
    }

    var metadata: [(String, GGUFValue)] = []
    var entries: [Entry] = []

    /// Writes the file atomically (a temporary file renamed over `url`).
    func write(to url: URL) throws(GGUFError) {
        var header = Data()
        header.append(u32: 0x4655_4747)
        header.append(u32: 3)
        header.append(u64: UInt64(entries.count))
        header.append(u64: UInt64(metadata.count))
        for (key, value) in metadata {
            header.append(string: key)
            header.append(u32: value.type.rawValue)
            header.append(value: value)
        }
        var offset = 0
        var offsets: [Int] = []
        for e in entries {
            header.append(string: e.name)
            header.append(u32: UInt32(e.tensor.shape.count))
            for d in e.tensor.shape.reversed() { header.append(u64: UInt64(d)) }
            header.append(u32: e.type.rawValue)
            header.append(u64: UInt64(offset))
            offsets.append(offset)
            offset += Self.padded(e.type.byteCount(values: e.tensor.count)!)
        }
        header.append(Data(count: Self.padded(header.count) - header.count))
        do {
            try AtomicFile.write(to: url) { temp in
                guard FileManager.default.createFile(atPath: temp.path, contents: nil) else {
                    throw GGUFError.io(file: url.path, reason: "cannot create the file")
                }
                let handle = try FileHandle(forWritingTo: temp)
                defer { try? handle.close() }
                try handle.write(contentsOf: header)
                for e in entries {
                    let bytes = Self.padded(e.type.byteCount(values: e.tensor.count)!)
                    var data = Data(count: bytes)
                    data.withUnsafeMutableBytes { e.type.quantize(e.tensor.data, count: e.tensor.count, into: $0.baseAddress!) }
                    try handle.write(contentsOf: data)
                }
            }
        } catch let error as GGUFError {
            throw error
        } catch let error as AtomicFileError {
            throw .io(file: url.path, reason: error.reason)
        } catch {
            throw .io(file: url.path, reason: "cannot write: \(error)")
        }
    }

    static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

private extension Data {
    mutating func append(u32 v: UInt32) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    mutating func append(u64 v: UInt64) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }

    mutating func append(string s: String) {
        append(u64: UInt64(s.utf8.count))
        append(contentsOf: Array(s.utf8))
    }

    mutating func append(value: GGUFValue) {
        switch value {
        case let .uint8(v): append(v)
        case let .int8(v): append(UInt8(bitPattern: v))
        case let .uint16(v): Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
        case let .int16(v): Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
        case let .uint32(v): append(u32: v)
        case let .int32(v): append(u32: UInt32(bitPattern: v))
        case let .uint64(v): append(u64: v)
        case let .int64(v): append(u64: UInt64(bitPattern: v))
        case let .float32(v): append(u32: v.bitPattern)
        case let .float64(v): append(u64: v.bitPattern)
        case let .bool(v): append(v ? 1 : 0)
        case let .string(s): append(string: s)
        case let .array(type, items):
            append(u32: type.rawValue)
            append(u64: UInt64(items.count))
            for item in items { append(value: item) }
        }
    }
}

extension GGUFModel {
    /// Writes `checkpoint`'s weights (adapters already merged) as a GGUF file that llama.cpp
    /// and transformers load: matrices as `type` (F32, F16 or Q8_0; a matrix whose rows are
    /// not whole Q8_0 blocks stays F16), norms and biases as F32, q/k rows in llama.cpp's
    /// order, with the tokenizer and chat template in the metadata.
    public static func export(_ checkpoint: Checkpoint, to url: URL, type: GGMLType) throws(GGUFError) {
        let path = url.path
        guard GGMLType.writable.contains(type) else {
            throw .unsupported(file: path, reason: "writing \(type.name); SafeTune writes \(GGMLType.writable.map(\.name).joined(separator: ", "))")
        }
        guard !checkpoint.isAdapterOnly else {
            throw .unsupported(file: path, reason: "an adapter-only checkpoint has no weights to export; attach it to its base first")
        }
        let c = checkpoint.config
        guard c.family == .llama else { throw .unsupported(file: path, reason: "exporting the gpt2 family (GGUF export writes llama and qwen2)") }
        let arch = HuggingFaceModel.modelType(c)
        guard let tokenizerJSON = checkpoint.tokenizerJSON else {
            throw .unsupported(file: path, reason: "a checkpoint without a tokenizer (GGUF files carry theirs)")
        }
        var writer = GGUFWriter()
        let fileType: UInt32 = type == .f32 ? 0 : type == .f16 ? 1 : 7
        writer.metadata = [
            ("general.architecture", .string(arch)),
            ("general.name", .string(url.deletingPathExtension().lastPathComponent)),
            ("general.file_type", .uint32(fileType)),
            ("\(arch).context_length", .uint32(UInt32(c.maxPositions))),
            ("\(arch).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(arch).block_count", .uint32(UInt32(c.numLayers))),
            ("\(arch).feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("\(arch).attention.head_count", .uint32(UInt32(c.numHeads))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(c.numKVHeads))),
            ("\(arch).rope.freq_base", .float32(c.ropeTheta)),
            ("\(arch).rope.dimension_count", .uint32(UInt32(c.headDim))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(c.normEps)),
            ("\(arch).vocab_size", .uint32(UInt32(c.vocabSize))),
        ]
        writer.metadata += try GGUFTokenizer.metadata(tokenizerJSON, vocabSize: c.vocabSize, file: path)
        if let bos = c.bosTokenId { writer.metadata.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(bos)))) }
        if let eos = c.eosTokenId { writer.metadata.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(eos)))) }
        if let template = checkpoint.chatTemplate { writer.metadata.append(("tokenizer.chat_template", .string(template))) }

        let layout = ParameterLayout(config: c)
        do { try layout.validate(shapes: checkpoint.weights.mapValues(\.shape), file: path, prefix: "") } catch {
            throw .invalid(file: path, reason: error.description)
        }
        for parameter in layout.parameters {
            guard let name = ggufName(parameter.name) else { continue }
            var tensor = checkpoint.weights[parameter.name]!
            if permutesQK(architecture: arch), let heads = rotaryHeads(parameter.name, c) {
                tensor = ggufRowOrder(tensor, heads: heads)
            }
            var stored = tensor.shape.count == 1 ? GGMLType.f32 : type
            if tensor.shape.last! % stored.blockValues != 0 { stored = .f16 }
            // F16 values and Q8_0 scales (a block's largest magnitude / 127) must fit float16.
            let limit = Float(Float16.greatestFiniteMagnitude) * (stored == .q8_0 ? 127 : 1)
            if stored != .f32, let i = (0..<tensor.count).first(where: { abs(tensor.data[$0]) > limit }) {
                throw .tensor(file: path, tensor: name, reason: "value \(tensor.data[i]) at element \(i) is too large for \(stored.name); export F32")
            }
            writer.entries.append(.init(name: name, tensor: tensor, type: stored))
        }
        try writer.write(to: url)
    }
}
