import Engine
import Foundation
import Models
@testable import Checkpoints

/// A fresh, empty folder under the system temporary folder.
func temporaryFolder(_ label: String = #function) throws -> URL {
    let clean = label.filter { $0.isLetter || $0.isNumber }
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-ckpt-\(clean)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Small configurations of each family, valid for `ModelConfig.validate()`.
enum TinyConfigs {
    static let gpt2 = ModelConfig(family: .gpt2, vocabSize: 50, hiddenSize: 16, numLayers: 2, numHeads: 2,
                                  intermediateSize: 64, maxPositions: 32, bosTokenId: 0, eosTokenId: 1)
    static let llama = ModelConfig(family: .llama, vocabSize: 50, hiddenSize: 16, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                   intermediateSize: 40, maxPositions: 64, normEps: 1e-6, ropeTheta: 10_000)
}

/// Deterministic pseudo-random weights for every parameter of `config`.
func randomWeights(_ config: ModelConfig, seed: UInt64 = 1) -> [String: Tensor] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var out: [String: Tensor] = [:]
    for p in ParameterLayout(config: config).parameters {
        let t = Tensor(zeros: p.shape)
        for i in 0..<t.count {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            t.data[i] = Float(Int(state % 2001) - 1000) / 1000
        }
        out[p.name] = t
    }
    return out
}

/// Element-wise equality of two weight sets (names, shapes, values).
func sameWeights(_ a: [String: Tensor], _ b: [String: Tensor]) -> Bool {
    guard Set(a.keys) == Set(b.keys) else { return false }
    for (k, t) in a {
        guard let u = b[k], u.shape == t.shape, u.scalars == t.scalars else { return false }
    }
    return true
}

/// Writes `checkpoint` without the public writer's consistency checks, to build hostile files.
func writeUnchecked(_ checkpoint: Checkpoint, to url: URL) throws {
    let file = try HDF5File.create(at: url)
    try CheckpointWriter(file: file).write(checkpoint)
    try file.close()
}

/// Finds and runs a Python interpreter that has h5py (the Debian python3-h5py package).
enum PythonH5py {
    /// The interpreter, found once.
    static let python = interpreter()
    /// Whether the h5py tests run: where h5py is installed, and always in CI (where
    /// `scripts/setup` installs it, so a missing h5py fails them instead of skipping).
    static var enabled: Bool { python != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    static func interpreter() -> String? {
        for candidate in ["/usr/bin/python3", "/usr/local/bin/python3"] where FileManager.default.isExecutableFile(atPath: candidate) {
            if (try? run(candidate, "import h5py", arguments: [])) != nil { return candidate }
        }
        return nil
    }

    /// Runs `script` and returns its standard output; throws when it exits non-zero.
    @discardableResult
    static func run(_ python: String, _ script: String, arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonFailure(message: String(decoding: errData, as: UTF8.self))
        }
        return String(decoding: data, as: UTF8.self)
    }

    struct PythonFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { "python failed: \(message)" }
    }
}
