import Engine
import Foundation
import Models

/// What `safetune inspect` shows: read from metadata and dataset shapes, without loading
/// or hashing the weights.
public struct CheckpointSummary: Sendable, Codable {
    /// One adapted module.
    public struct Adapter: Sendable, Codable {
        public var module: String
        public var rank: Int?
        public var alpha: Double?
        public var target: String?
        public var parameters: Int
    }

    public var file: String
    public var formatVersion: Int
    public var created: String
    public var safetuneVersion: String
    public var config: ModelConfig
    /// Parameters stored under `/weights` (0 for an adapter-only checkpoint).
    public var weightParameters: Int
    /// Parameters the config calls for.
    public var modelParameters: Int
    public var baseSHA256: String?
    public var tokenizerBytes: Int?
    public var adapters: [Adapter]
    public var adapterParameters: Int
    /// Units per class (RU, UCU, CU, SCU) over all unit maps; nil without unit maps.
    public var unitClassCounts: [Int]?
    public var unitMapModules: Int
    /// Blocks with a stored safety direction (`/directions`); 0 without.
    public var directionBlocks: Int
    public var signalParameters: Int
    /// The guard threshold calibrated for the signal head (`/signal` attribute `guard_threshold`).
    public var guardThreshold: Double?
    public var optimizerStep: Int64?
    public var provenance: Provenance?
    public var gate: GateRecord?

    /// Summarises the checkpoint at `url`.
    public static func read(from url: URL) throws(CheckpointError) -> CheckpointSummary {
        var summary = try ReadIsolation.reading(url, options: .init()) { source, _ throws(CheckpointError) in try readFile(source) }
        summary.file = url.path
        return summary
    }

    private static func readFile(_ url: URL) throws(CheckpointError) -> CheckpointSummary {
        do {
            let reader = try CheckpointReader(url: url, options: .init())
            return try summarize(reader)
        } catch let error as CheckpointError {
            throw error
        } catch let error as HDF5Error {
            throw CheckpointError(error)
        } catch {
            throw .io(file: url.path, reason: "\(error)")
        }
    }

    private static func summarize(_ r: CheckpointReader) throws -> CheckpointSummary {
        let f = r.file
        let config = try r.readConfig()
        let layout = ParameterLayout(config: config)
        func count(_ dataset: String) throws -> Int { Tensor.checkedCount(try f.shape(of: dataset, as: Float.self)) ?? 0 }
        func groupCount(_ group: String) throws -> Int {
            var n = 0
            for name in try f.children(of: group) {
                let child = "\(group)/\(name)"
                n += f.kind(of: child) == .group ? try groupCount(child) : try count(child)
            }
            return n
        }
        var weightParameters = 0
        if f.kind(of: "/weights") == .group {
            for name in try f.children(of: "/weights") { weightParameters += try count("/weights/\(name)") }
        }
        var adapters: [Adapter] = []
        if f.kind(of: "/adapters") == .group {
            for name in try f.children(of: "/adapters") where f.kind(of: "/adapters/\(name)") == .group {
                let g = "/adapters/\(name)"
                let a = try f.attributes(of: g)
                adapters.append(Adapter(module: name, rank: a["rank"]?.intValue.map { Int($0) }, alpha: a["alpha"]?.doubleValue,
                                        target: a["target"]?.stringValue, parameters: try groupCount(g)))
            }
        }
        var unitCounts: [Int]? = nil
        var unitModules = 0
        if f.kind(of: "/units") == .group {
            var counts = [Int](repeating: 0, count: Int(UnitMapEntry.maxClass) + 1)
            for layer in try f.children(of: "/units") {
                for module in try f.children(of: "/units/\(layer)") {
                    let path = "/units/\(layer)/\(module)/classes"
                    let n = try r.reserve(try f.shape(of: path, as: Int8.self), at: path)
                    for c in try f.readArray(path, as: Int8.self, limit: n).values where c >= 0 && c <= UnitMapEntry.maxClass {
                        counts[Int(c)] += 1
                    }
                    unitModules += 1
                }
            }
            unitCounts = counts
        }
        var tokenizerBytes: Int? = nil
        if f.kind(of: "/tokenizer") == .dataset { tokenizerBytes = Tensor.checkedCount(try f.shape(of: "/tokenizer", as: UInt8.self)) }
        return CheckpointSummary(
            file: f.path, formatVersion: Int(try f.attribute("format_version", of: "/")?.intValue ?? 0),
            created: try r.rootString("created") ?? "", safetuneVersion: try r.rootString("safetune_version") ?? "",
            config: config, weightParameters: weightParameters, modelParameters: layout.parameterCount,
            baseSHA256: try r.rootString("base_weights_sha256"), tokenizerBytes: tokenizerBytes,
            adapters: adapters, adapterParameters: adapters.reduce(0) { $0 + $1.parameters },
            unitClassCounts: unitCounts, unitMapModules: unitModules,
            directionBlocks: f.kind(of: "/directions/directions") == .dataset ? try f.shape(of: "/directions/directions", as: Float.self).first ?? 0 : 0,
            signalParameters: f.kind(of: "/signal") == .group ? try groupCount("/signal") : 0,
            guardThreshold: f.kind(of: "/signal") == .group ? try f.attribute("guard_threshold", of: "/signal")?.doubleValue : nil,
            optimizerStep: f.kind(of: "/optimizer") == .group ? try f.attribute("step", of: "/optimizer")?.intValue : nil,
            provenance: f.kind(of: "/provenance") == .group ? try r.readProvenance() : nil,
            gate: f.kind(of: "/gate") == .group ? try r.readGate() : nil)
    }
}
