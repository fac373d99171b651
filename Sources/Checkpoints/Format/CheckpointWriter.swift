import Engine
import Foundation
import Models

extension Checkpoint {
    /// Writes the checkpoint atomically: a temporary file in the same folder is written,
    /// flushed (`H5Fflush`, then `fsync`), and renamed over `url`, so a crash leaves the
    /// previous file intact. The weights are checked against the config first, so
    /// SafeTune never writes a file it would refuse to read.
    public func write(to url: URL) throws(CheckpointError) {
        try write(to: url, cleanCopy: false)
    }

    /// `write(to:)`, or with `cleanCopy` a scratch file for `ReadIsolation`: written in
    /// place, not synced, and without checksums (each dataset's `sha256`, the weights'
    /// canonical digest), since only a reader told not to verify them reads it, at once.
    func write(to url: URL, cleanCopy: Bool) throws(CheckpointError) {
        do {
            try config.validate()
        } catch {
            throw .invalidConfig(file: url.path, reason: error.description)
        }
        if !isAdapterOnly {
            try ParameterLayout(config: config).validate(shapes: weights.mapValues(\.shape), file: url.path, prefix: "/weights/")
        }
        do {
            let body = { (path: URL) throws in
                let file = try HDF5File.create(at: path)
                try AtomicFile.reserve(payloadBytes, in: path, for: url)
                try CheckpointWriter(file: file, checksums: !cleanCopy).write(self)
                try file.flush()
                try file.close()
            }
            if cleanCopy { try body(url) } else { try AtomicFile.write(to: url, body) }
        } catch let error as CheckpointError {
            throw error
        } catch let error as AtomicFileError {
            throw .io(file: url.path, reason: error.reason)
        } catch let error as HDF5Error {
            throw CheckpointError(error)
        } catch {
            throw .io(file: url.path, reason: "\(error)")
        }
    }
}

extension Checkpoint {
    /// The bytes of tensor data and tokenizer the file will hold: a lower bound of its
    /// size (HDF5's metadata comes on top), so space reserved for it is never wasted.
    var payloadBytes: Int {
        func bytes(_ g: TensorGroup) -> Int {
            g.tensors.values.reduce(0) { $0 + 4 * $1.count } + g.groups.values.reduce(0) { $0 + bytes($1) }
        }
        var total = weights.values.reduce(0) { $0 + 4 * $1.count } + (tokenizerJSON?.count ?? 0)
        for group in [addedRows, adapters, directions, signal, optimizer] { total += group.map(bytes) ?? 0 }
        return total
    }
}

/// Lays a `Checkpoint` out in an open HDF5 file.
struct CheckpointWriter {
    let file: HDF5File
    /// Whether datasets get their `sha256` and the weights their canonical digest.
    var checksums = true

    func write(_ c: Checkpoint) throws {
        try file.setAttribute("format", .string(Checkpoint.formatName), on: "/")
        try file.setAttribute("format_version", .int(Int64(Checkpoint.formatVersion)), on: "/")
        try file.setAttribute("created", .string(c.created), on: "/")
        try file.setAttribute("safetune_version", .string(c.safetuneVersion), on: "/")
        if let base = c.baseSHA256 {
            guard c.weights.isEmpty else {
                throw CheckpointError.invalidConfig(file: file.path, reason: "an adapter-only checkpoint cannot also hold weights")
            }
            try file.setAttribute("base_weights_sha256", .string(base), on: "/")
        }
        if let template = c.chatTemplate { try file.setAttribute("chat_template", .string(template), on: "/") }
        try writeConfig(c.config)
        if let tok = c.tokenizerJSON {
            try [UInt8](tok).withUnsafeBufferPointer { try file.write("/tokenizer", shape: [tok.count], values: $0) }
            if checksums { try file.setAttribute("sha256", .string(TensorDigest.sha256(bytes: tok)), on: "/tokenizer") }
        }
        if !c.weights.isEmpty {
            // The canonical digest reads every weight byte once more: on the other core,
            // while the tensors (and their own digests) are written.
            let canonical = checksums ? Background { c.weightsSHA256 } : nil
            try file.createGroup("/weights")
            for name in c.weights.keys.sorted() {
                try Checkpoint.checkName(name)
                try writeTensor(c.weights[name]!, at: "/weights/\(name)")
            }
            if let canonical { try file.setAttribute("canonical_sha256", .string(canonical.value), on: "/weights") }
        }
        if let added = c.addedRows { try writeGroup(added, at: "/added_rows") }
        if let adapters = c.adapters { try writeGroup(adapters, at: "/adapters") }
        if let units = c.units { try writeUnits(units) }
        if let directions = c.directions { try writeGroup(directions, at: "/directions") }
        if let signal = c.signal { try writeGroup(signal, at: "/signal") }
        if let optimizer = c.optimizer { try writeGroup(optimizer, at: "/optimizer") }
        if let p = c.provenance { try writeProvenance(p) }
        if let g = c.gate { try writeGate(g) }
    }

    func writeTensor(_ t: Tensor, at path: String) throws {
        try file.write(path, shape: t.shape, values: UnsafeBufferPointer(start: t.data, count: t.count))
        if checksums { try file.setAttribute("sha256", .string(TensorDigest.sha256(t)), on: path) }
    }

    func writeGroup(_ group: TensorGroup, at path: String) throws {
        try file.createGroup(path)
        for (key, value) in group.attributes.sorted(by: { $0.key < $1.key }) {
            try file.setAttribute(key, value, on: path)
        }
        for name in group.tensors.keys.sorted() {
            try Checkpoint.checkName(name)
            try writeTensor(group.tensors[name]!, at: "\(path)/\(name)")
        }
        for name in group.groups.keys.sorted() {
            try Checkpoint.checkName(name)
            try writeGroup(group.groups[name]!, at: "\(path)/\(name)")
        }
    }

    func writeConfig(_ c: ModelConfig) throws {
        try file.createGroup("/config")
        var attrs: [String: AttributeValue] = [
            "family": .string(c.family.rawValue),
            "vocab_size": .int(Int64(c.vocabSize)),
            "hidden_size": .int(Int64(c.hiddenSize)),
            "num_layers": .int(Int64(c.numLayers)),
            "num_heads": .int(Int64(c.numHeads)),
            "num_kv_heads": .int(Int64(c.numKVHeads)),
            "intermediate_size": .int(Int64(c.intermediateSize)),
            "max_positions": .int(Int64(c.maxPositions)),
            "norm_eps": .double(Double(c.normEps)),
            "rope_theta": .double(Double(c.ropeTheta)),
            "tie_word_embeddings": .int(c.tieWordEmbeddings ? 1 : 0),
            "qkv_bias": .int(c.qkvBias ? 1 : 0),
            "output_bias": .int(c.outputBias ? 1 : 0),
            "mlp_bias": .int(c.mlpBias ? 1 : 0),
        ]
        if let bos = c.bosTokenId { attrs["bos_token_id"] = .int(Int64(bos)) }
        if let eos = c.eosTokenId { attrs["eos_token_id"] = .int(Int64(eos)) }
        for (k, v) in attrs.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v, on: "/config") }
    }

    func writeUnits(_ units: UnitMaps) throws {
        try file.createGroup("/units")
        for (k, v) in units.attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v, on: "/units") }
        for layer in units.layers.keys.sorted() {
            for (module, entry) in units.layers[layer]!.sorted(by: { $0.key < $1.key }) {
                try Checkpoint.checkName(module)
                let base = "/units/\(layer)/\(module)"
                try file.write("\(base)/classes", shape: [entry.classes.count], array: entry.classes)
                if checksums {
                    try file.setAttribute("sha256", .string(entry.classes.withUnsafeBytes { TensorDigest.sha256(bytes: $0) }), on: "\(base)/classes")
                }
                try writeTensor(entry.scores, at: "\(base)/scores")
            }
        }
    }

    func writeProvenance(_ p: Provenance) throws {
        try file.createGroup("/provenance")
        if let r = p.recipe { try file.setAttribute("recipe", .string(r), on: "/provenance") }
        if let r = p.recipeSHA256 { try file.setAttribute("recipe_sha256", .string(r), on: "/provenance") }
        // One "digest  name" line per data file, like sha256sum output.
        let lines = p.dataSHA256.sorted(by: { $0.key < $1.key }).map { "\($0.value)  \($0.key)" }.joined(separator: "\n")
        try file.setAttribute("data_sha256", .string(lines), on: "/provenance")
        if let r = p.parentSHA256 { try file.setAttribute("parent_sha256", .string(r), on: "/provenance") }
        if let s = p.seed { try file.setAttribute("seed", .int(s), on: "/provenance") }
        if let s = p.steps { try file.setAttribute("steps", .int(s), on: "/provenance") }
        try file.setAttribute("safetune_version", .string(p.safetuneVersion), on: "/provenance")
        if let s = p.source {
            try file.setAttribute("source_file", .string(s.file), on: "/provenance")
            try file.setAttribute("source_sha256", .string(s.sha256), on: "/provenance")
            if let v = s.package { try file.setAttribute("source_package", .string(v), on: "/provenance") }
            if let v = s.packageVersion { try file.setAttribute("source_package_version", .string(v), on: "/provenance") }
        }
    }

    func writeGate(_ g: GateRecord) throws {
        try file.createGroup("/gate")
        try file.setAttribute("verdict", .string(g.verdict), on: "/gate")
        try file.setAttribute("date", .string(g.date), on: "/gate")
        for (k, v) in g.scores { try file.setAttribute("score.\(k)", .double(v), on: "/gate") }
        for (k, v) in g.thresholds { try file.setAttribute("threshold.\(k)", .double(v), on: "/gate") }
    }
}

/// A value computed on a background thread; `value` waits for it.
private final class Background<T: Sendable>: @unchecked Sendable {
    private var result: T?
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping @Sendable () -> T) {
        DispatchQueue.global(qos: .userInitiated).async {
            self.result = work()
            self.done.signal()
        }
    }

    var value: T {
        done.wait()
        done.signal()
        return result!
    }
}
