import Engine
import Foundation
import Models
import Testing
@testable import Checkpoints

/// Tiny models saved by transformers (scripts/reference/checkpoint_make_fixtures.py):
/// imported, exported, and, when a Python with transformers and peft is named by
/// `SAFETUNE_REFERENCE_PYTHON`, reloaded by transformers to compare logits exactly.
@Suite struct ReferenceExportTests {
    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent(name)
    }

    /// The reference interpreter and the verify script, when `SAFETUNE_REFERENCE_PYTHON`
    /// names a python3 with torch, transformers and peft.
    static let reference: (python: String, script: String)? = {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/reference/checkpoint_verify_export.py").path
        guard let python = ProcessInfo.processInfo.environment["SAFETUNE_REFERENCE_PYTHON"],
              FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) else { return nil }
        return (python, script)
    }()

    static func runReference(_ arguments: [String]) throws -> [String: Any] {
        let (python, script) = try #require(reference)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["HF_HUB_OFFLINE": "1"]) { _, new in new }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "reference script failed: \(String(decoding: data, as: UTF8.self))")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Imports fixture `name`, writes it as a checkpoint, exports that to `dir/hf`, and
    /// checks the weights survive each step unchanged.
    static func roundTrip(_ name: String, in dir: URL) throws -> URL {
        let source = try fixture(name)
        let imported = try HuggingFaceModel.importModel(from: source)
        let original = try SafetensorsFile(contentsOf: source.appendingPathComponent("model.safetensors")).tensors()
        #expect(sameWeights(imported.weights, original.filter { !$0.key.hasSuffix("rotary_emb.inv_freq") }))
        #expect(HuggingFaceModel.modelType(imported.config) == name)
        let ckpt = dir.appendingPathComponent("model.h5")
        try imported.write(to: ckpt)
        let export = dir.appendingPathComponent("hf")
        try HuggingFaceModel.export(try Checkpoint.read(from: ckpt), to: export)
        #expect(sameWeights(try SafetensorsFile(contentsOf: export.appendingPathComponent("model.safetensors")).tensors(), imported.weights))
        return export
    }

    /// Fixture `name` exported to `dir/hf` with random LoRA adapters exported to `dir/peft`.
    static func peftFolders(_ name: String, in dir: URL) throws {
        let base = try HuggingFaceModel.importModel(from: try fixture(name))
        let layout = ParameterLayout(config: base.config)
        var adapters = TensorGroup()
        var seed: UInt64 = 7
        for m in layout.linearModules where ["c_attn", "q_proj", "v_proj", "c_fc", "down_proj"].contains(m.target) {
            func random(_ shape: [Int]) -> Tensor {
                let t = Tensor(zeros: shape)
                for i in 0..<t.count {
                    seed = seed &* 6364136223846793005 &+ 1442695040888963407
                    t.data[i] = Float(Int(seed >> 40) % 1000 - 500) / 5000
                }
                return t
            }
            adapters.groups[m.name] = TensorGroup(tensors: ["A": random([4, m.inFeatures]), "B": random([m.outFeatures, 4])],
                                                  attributes: ["rank": .int(4), "alpha": .double(16), "target": .string(m.target)])
        }
        try HuggingFaceModel.export(base, to: dir.appendingPathComponent("hf"))
        try PEFTExport.export(adapters: adapters, config: base.config, baseModel: name, to: dir.appendingPathComponent("peft"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("peft/adapter_model.safetensors").path))
    }

    @Test(arguments: ["gpt2", "llama", "qwen2"])
    func importCheckpointExportKeepsWeights(name: String) throws {
        let dir = try temporaryFolder(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try Self.roundTrip(name, in: dir)
    }

    @Test(.enabled(if: reference != nil, "set SAFETUNE_REFERENCE_PYTHON to a python3 with torch, transformers and peft"), arguments: ["gpt2", "llama", "qwen2"])
    func transformersReloadsTheExportWithExactLogits(name: String) throws {
        let dir = try temporaryFolder(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        let export = try Self.roundTrip(name, in: dir)
        let expected = try Self.fixture("expected_logits.json").path
        let result = try Self.runReference([export.path, "--ids", "3,17,42,5,99,0,64", "--compare", expected, "--key", name])
        #expect(result["equal_to_expected"] as? Bool == true, "max abs diff \(result["max_abs_diff"] ?? "?")")
    }

    @Test(arguments: ["gpt2", "llama"])
    func peftExportWritesAdapters(name: String) throws {
        let dir = try temporaryFolder("peft" + name)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.peftFolders(name, in: dir)
    }

    @Test(.enabled(if: reference != nil, "set SAFETUNE_REFERENCE_PYTHON to a python3 with torch, transformers and peft"), arguments: ["gpt2", "llama"])
    func peftAdapterLoadsAndMatchesAManualMerge(name: String) throws {
        let dir = try temporaryFolder("peft" + name)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.peftFolders(name, in: dir)
        let result = try Self.runReference([dir.appendingPathComponent("hf").path, "--ids", "3,17,42,5",
                                            "--peft", dir.appendingPathComponent("peft").path])
        let diff = try #require(result["merge_max_abs_diff"] as? Double)
        #expect(diff < 1e-4, "PEFT and the manual merge differ by \(diff)")
        #expect(result["peft_changes_logits"] as? Bool == true)
    }
}
