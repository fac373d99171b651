import Engine
import Foundation
import Models

extension Checkpoint {
    /// Reads and fully validates a checkpoint: format and version, config, every shape
    /// against the config (before any tensor is allocated), size limits, each dataset's
    /// SHA-256, and finiteness of every float. With `ReadIsolation` on, a helper process
    /// reads the file, and this process reads the helper's clean copy of it.
    public static func read(from url: URL, options: CheckpointReadOptions = .init()) throws(CheckpointError) -> Checkpoint {
        try ReadIsolation.reading(url, options: options) { source, options throws(CheckpointError) in
            try readFile(source, options: options)
        }
    }

    private static func readFile(_ url: URL, options: CheckpointReadOptions) throws(CheckpointError) -> Checkpoint {
        do {
            let reader = try CheckpointReader(url: url, options: options)
            return try reader.readAll()
        } catch let error as CheckpointError {
            throw error
        } catch let error as HDF5Error {
            throw CheckpointError(error)
        } catch {
            throw .io(file: url.path, reason: "\(error)")
        }
    }
}

/// Reads the sections of one checkpoint file, counting allocated elements against the limits.
final class CheckpointReader {
    let file: HDF5File
    let options: CheckpointReadOptions
    var allocated = 0

    init(url: URL, options: CheckpointReadOptions) throws {
        file = try HDF5File.open(url)
        self.options = options
        try checkFormat()
    }

    var path: String { file.path }

    /// Root attributes: the format name and a version this code understands.
    func checkFormat() throws {
        guard try file.attribute("format", of: "/")?.stringValue == Checkpoint.formatName else {
            throw CheckpointError.notCheckpoint(file: path)
        }
        guard let version = try file.attribute("format_version", of: "/") else {
            throw CheckpointError.missingAttribute(file: path, object: "/", attribute: "format_version")
        }
        guard let v = version.intValue, v >= 1, v <= Checkpoint.formatVersion else {
            throw CheckpointError.unsupportedVersion(file: path, found: version.description, supported: Checkpoint.formatVersion)
        }
    }

    func rootString(_ name: String) throws -> String? {
        try file.attribute(name, of: "/")?.stringValue
    }

    func readAll() throws -> Checkpoint {
        let config = try readConfig()
        let base = try rootString("base_weights_sha256")
        var weights: [String: Tensor] = [:]
        if base == nil {
            weights = try readWeights(layout: ParameterLayout(config: config))
        } else if file.kind(of: "/weights") != nil {
            throw CheckpointError.unexpectedDataset(file: path, dataset: "/weights")
        }
        var c = Checkpoint(config: config, weights: weights, baseSHA256: base,
                           created: try rootString("created") ?? "", safetuneVersion: try rootString("safetune_version") ?? "")
        c.tokenizerJSON = try readTokenizer()
        c.chatTemplate = try rootString("chat_template")
        if file.kind(of: "/adapters") == .group { c.adapters = try readGroup("/adapters", depth: 0) }
        if file.kind(of: "/units") == .group { c.units = try readUnits(config: config) }
        if file.kind(of: "/added_rows") == .group { c.addedRows = try readGroup("/added_rows", depth: 0) }
        if file.kind(of: "/directions") == .group { c.directions = try readGroup("/directions", depth: 0) }
        if file.kind(of: "/signal") == .group { c.signal = try readGroup("/signal", depth: 0) }
        if file.kind(of: "/optimizer") == .group { c.optimizer = try readGroup("/optimizer", depth: 0) }
        if file.kind(of: "/provenance") == .group { c.provenance = try readProvenance() }
        if file.kind(of: "/gate") == .group { c.gate = try readGate() }
        return c
    }

    // MARK: Config

    func readConfig() throws -> ModelConfig {
        guard file.kind(of: "/config") == .group else { throw CheckpointError.missingDataset(file: path, dataset: "/config") }
        let a = try file.attributes(of: "/config")
        func int(_ k: String) throws -> Int {
            guard let v = a[k] else { throw CheckpointError.missingAttribute(file: path, object: "/config", attribute: k) }
            guard let i = v.intValue, i >= Int64(Int32.min), i <= Int64(Int32.max) else {
                throw CheckpointError.invalidAttribute(file: path, object: "/config", attribute: k, reason: "is not an integer: \(v)")
            }
            return Int(i)
        }
        func float(_ k: String) throws -> Float {
            guard let v = a[k] else { throw CheckpointError.missingAttribute(file: path, object: "/config", attribute: k) }
            guard let d = v.doubleValue else {
                throw CheckpointError.invalidAttribute(file: path, object: "/config", attribute: k, reason: "is not a number: \(v)")
            }
            return Float(d)
        }
        func bool(_ k: String) throws -> Bool { try int(k) != 0 }
        guard let familyName = a["family"]?.stringValue else {
            throw CheckpointError.missingAttribute(file: path, object: "/config", attribute: "family")
        }
        guard let family = ModelConfig.Family(rawValue: familyName) else {
            throw CheckpointError.invalidAttribute(file: path, object: "/config", attribute: "family", reason: "'\(familyName)' is not gpt2 or llama")
        }
        let config = ModelConfig(
            family: family, vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
            numLayers: try int("num_layers"), numHeads: try int("num_heads"), numKVHeads: try int("num_kv_heads"),
            intermediateSize: try int("intermediate_size"), maxPositions: try int("max_positions"),
            normEps: try float("norm_eps"), ropeTheta: try float("rope_theta"),
            tieWordEmbeddings: try bool("tie_word_embeddings"), qkvBias: try bool("qkv_bias"),
            outputBias: try bool("output_bias"), mlpBias: try bool("mlp_bias"),
            bosTokenId: a["bos_token_id"] == nil ? nil : try int("bos_token_id"),
            eosTokenId: a["eos_token_id"] == nil ? nil : try int("eos_token_id"))
        do {
            try config.validate()
        } catch {
            throw CheckpointError.invalidConfig(file: path, reason: error.description)
        }
        return config
    }

    // MARK: Tensors

    /// Checks a declared shape against the limits and reserves its elements.
    func reserve(_ shape: [Int], at dataset: String) throws -> Int {
        guard let n = Tensor.checkedCount(shape), n <= options.maxTensorElements else {
            throw CheckpointError.tooLarge(file: path, dataset: dataset, shape: shape, limit: options.maxTensorElements)
        }
        guard case let (total, false) = allocated.addingReportingOverflow(n), total <= options.maxTotalElements else {
            throw CheckpointError.tooLarge(file: path, dataset: dataset, shape: shape, limit: options.maxTotalElements)
        }
        allocated = total
        return n
    }

    func verify(_ actual: @autoclosure () -> String, at dataset: String) throws {
        guard options.verifyChecksums else { return }
        guard let stored = try file.attribute("sha256", of: dataset) else {
            throw CheckpointError.missingAttribute(file: path, object: dataset, attribute: "sha256")
        }
        guard stored.stringValue == actual() else { throw CheckpointError.checksumMismatch(file: path, dataset: dataset) }
    }

    /// Reads a float32 dataset whose shape has already been checked.
    func readTensor(_ dataset: String, shape: [Int]) throws -> Tensor {
        _ = try reserve(shape, at: dataset)
        let t = Tensor(zeros: shape)
        try file.read(dataset, into: UnsafeMutableBufferPointer(start: t.data, count: t.count))
        try verify(TensorDigest.sha256(t), at: dataset)
        let p = t.data
        for i in 0..<t.count where !p[i].isFinite {
            throw CheckpointError.nonFinite(file: path, dataset: dataset, index: i)
        }
        return t
    }

    func readTensor(_ dataset: String) throws -> Tensor {
        try readTensor(dataset, shape: file.shape(of: dataset, as: Float.self))
    }

    func readWeights(layout: ParameterLayout) throws -> [String: Tensor] {
        guard file.kind(of: "/weights") == .group else { throw CheckpointError.missingDataset(file: path, dataset: "/weights") }
        // Every shape is checked against the config before anything is allocated.
        var shapes: [String: [Int]] = [:]
        for name in try file.children(of: "/weights") {
            let dataset = "/weights/\(name)"
            guard file.kind(of: dataset) == .dataset else { throw CheckpointError.unexpectedDataset(file: path, dataset: dataset) }
            shapes[name] = try file.shape(of: dataset, as: Float.self)
        }
        try layout.validate(shapes: shapes, file: path, prefix: "/weights/")
        var weights: [String: Tensor] = [:]
        for param in layout.parameters {
            weights[param.name] = try readTensor("/weights/\(param.name)", shape: param.shape)
        }
        return weights
    }

    func readTokenizer() throws -> Data? {
        guard let kind = file.kind(of: "/tokenizer") else { return nil }
        guard kind == .dataset else { throw CheckpointError.missingDataset(file: path, dataset: "/tokenizer") }
        let shape = try file.shape(of: "/tokenizer", as: UInt8.self)
        guard shape.count == 1 else {
            throw CheckpointError.shapeMismatch(file: path, dataset: "/tokenizer", expected: [-1], found: shape)
        }
        let n = try reserve(shape, at: "/tokenizer")
        let (_, bytes) = try file.readArray("/tokenizer", as: UInt8.self, limit: n)
        try verify(TensorDigest.sha256(bytes: bytes), at: "/tokenizer")
        return Data(bytes)
    }

    func readGroup(_ group: String, depth: Int) throws -> TensorGroup {
        guard depth < 8 else { throw CheckpointError.invalidValue(file: path, dataset: group, reason: "groups nested deeper than 8 levels") }
        var out = TensorGroup(attributes: try file.attributes(of: group))
        for name in try file.children(of: group) {
            let child = "\(group)/\(name)"
            switch file.kind(of: child) {
            case .dataset: out.tensors[name] = try readTensor(child)
            case .group: out.groups[name] = try readGroup(child, depth: depth + 1)
            case nil: throw CheckpointError.missingDataset(file: path, dataset: child)
            }
        }
        return out
    }

    func readUnits(config: ModelConfig) throws -> UnitMaps {
        var maps = UnitMaps(attributes: try file.attributes(of: "/units"))
        for layerName in try file.children(of: "/units") {
            guard let layer = Int(layerName), layer >= 0, layer < config.numLayers else {
                throw CheckpointError.unexpectedDataset(file: path, dataset: "/units/\(layerName)")
            }
            var modules: [String: UnitMapEntry] = [:]
            for module in try file.children(of: "/units/\(layerName)") {
                let base = "/units/\(layerName)/\(module)"
                let classesPath = "\(base)/classes", scoresPath = "\(base)/scores"
                guard file.kind(of: classesPath) == .dataset else { throw CheckpointError.missingDataset(file: path, dataset: classesPath) }
                guard file.kind(of: scoresPath) == .dataset else { throw CheckpointError.missingDataset(file: path, dataset: scoresPath) }
                let classShape = try file.shape(of: classesPath, as: Int8.self)
                let scoreShape = try file.shape(of: scoresPath, as: Float.self)
                guard classShape.count == 1, scoreShape.first == classShape[0] else {
                    throw CheckpointError.shapeMismatch(file: path, dataset: scoresPath, expected: classShape, found: scoreShape)
                }
                let n = try reserve(classShape, at: classesPath)
                let (_, classes) = try file.readArray(classesPath, as: Int8.self, limit: n)
                try verify(classes.withUnsafeBytes { TensorDigest.sha256(bytes: $0) }, at: classesPath)
                if let bad = classes.firstIndex(where: { $0 < 0 || $0 > UnitMapEntry.maxClass }) {
                    throw CheckpointError.invalidValue(file: path, dataset: classesPath, reason: "class \(classes[bad]) at unit \(bad) is outside 0...3")
                }
                modules[module] = UnitMapEntry(classes: classes, scores: try readTensor(scoresPath, shape: scoreShape))
            }
            maps.layers[layer] = modules
        }
        return maps
    }

    // MARK: Attribute sections

    func readProvenance() throws -> Provenance {
        let a = try file.attributes(of: "/provenance")
        var p = Provenance(recipe: a["recipe"]?.stringValue, recipeSHA256: a["recipe_sha256"]?.stringValue,
                           parentSHA256: a["parent_sha256"]?.stringValue, seed: a["seed"]?.intValue, steps: a["steps"]?.intValue,
                           safetuneVersion: a["safetune_version"]?.stringValue ?? "")
        if let file = a["source_file"]?.stringValue, let sha = a["source_sha256"]?.stringValue {
            p.source = ImportSource(file: file, sha256: sha, package: a["source_package"]?.stringValue,
                                    packageVersion: a["source_package_version"]?.stringValue)
        }
        for line in (a["data_sha256"]?.stringValue ?? "").split(separator: "\n") {
            guard let gap = line.range(of: "  ") else {
                throw CheckpointError.invalidAttribute(file: path, object: "/provenance", attribute: "data_sha256", reason: "line '\(line)' is not 'digest  name'")
            }
            p.dataSHA256[String(line[gap.upperBound...])] = String(line[..<gap.lowerBound])
        }
        return p
    }

    func readGate() throws -> GateRecord {
        let a = try file.attributes(of: "/gate")
        guard let verdict = a["verdict"]?.stringValue else {
            throw CheckpointError.missingAttribute(file: path, object: "/gate", attribute: "verdict")
        }
        var g = GateRecord(verdict: verdict, scores: [:], thresholds: [:], date: a["date"]?.stringValue ?? "")
        for (k, v) in a {
            if k.hasPrefix("score."), let d = v.doubleValue { g.scores[String(k.dropFirst(6))] = d }
            if k.hasPrefix("threshold."), let d = v.doubleValue { g.thresholds[String(k.dropFirst(10))] = d }
        }
        return g
    }
}
