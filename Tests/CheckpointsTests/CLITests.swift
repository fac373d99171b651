import Engine
import Foundation
import Models
import Testing
import TestSupport
@testable import Checkpoints

/// `safetune import hf` → `inspect` → `export hf|peft` on the tiny transformers fixtures,
/// through the real binary: exit codes, output files, and one-line errors.
@Suite(.enabled(if: BuiltBinary.safetune.url != nil, "safetune binary not found next to the test bundle; build it with `swift build`"))
struct CLITests {
    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent(name)
    }

    /// Checks a failed run: status 2, nothing but one `error:` line on standard error.
    static func expectOneLineError(_ r: BuiltBinary.Result, mentioning fragment: String) {
        #expect(r.status == 2)
        #expect(r.err.hasPrefix("error: ") && r.err.hasSuffix("\n"), "stderr: \(r.err)")
        #expect(r.err.filter { $0 == "\n" }.count == 1, "more than one line: \(r.err)")
        #expect(r.err.contains(fragment), "stderr: \(r.err)")
    }

    @Test func inspectShowsTheProvenance() throws {
        let dir = try temporaryFolder("cliprov")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.h5")
        try fullCheckpoint(TinyConfigs.gpt2).write(to: url)
        let r = try BuiltBinary.safetune.run("inspect", url.path)
        #expect(r.status == 0 && r.out.contains("seed 1234, 125 steps, 2 data files"), "\(r.out)")
    }

    @Test(arguments: ["gpt2", "llama", "qwen2"])
    func importInspectExportRoundTrip(_ family: String) throws {
        let dir = try temporaryFolder("cli\(family)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try Self.fixture(family)
        let ckpt = dir.appendingPathComponent("model.h5").path
        let exported = dir.appendingPathComponent("hf").path

        let imported = try BuiltBinary.safetune.run("import", "hf", source.path, "-o", ckpt, "--json")
        #expect(imported.status == 0, "\(imported.err)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(imported.out.utf8)) as? [String: Any])
        #expect(summary["model_type"] as? String == family)

        let inspected = try BuiltBinary.safetune.run("inspect", ckpt, "--json")
        #expect(inspected.status == 0, "\(inspected.err)")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(inspected.out.utf8)) as? [String: Any])
        let expected = try ModelConfig.huggingFace(contentsOf: source.appendingPathComponent("config.json"))
        #expect((info["config"] as? [String: Any])?["vocabSize"] as? Int == expected.vocabSize)

        let exportedRun = try BuiltBinary.safetune.run("export", "hf", ckpt, "-o", exported)
        #expect(exportedRun.status == 0, "\(exportedRun.err)")
        // The exported folder imports back to the same config and the same tensors.
        let original = try HuggingFaceModel.importModel(from: source)
        let back = try HuggingFaceModel.importModel(from: URL(fileURLWithPath: exported))
        #expect(back.config == original.config)
        #expect(sameWeights(back.weights, original.weights))

        // No adapters in a plain import: a one-line error, and no folder written.
        let peft = try BuiltBinary.safetune.run("export", "peft", ckpt, "-o", dir.appendingPathComponent("peft").path)
        Self.expectOneLineError(peft, mentioning: "/adapters")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("peft").path))
    }

    @Test func peftExportOfCheckpointWithAdapters() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var checkpoint = try HuggingFaceModel.importModel(from: try Self.fixture("gpt2"))
        var adapters = TensorGroup()
        for m in ParameterLayout(config: checkpoint.config).linearModules where m.target == "c_attn" {
            adapters.groups[m.name] = TensorGroup(
                tensors: ["A": Tensor(repeating: 0.1, shape: [2, m.inFeatures]), "B": Tensor(repeating: 0.2, shape: [m.outFeatures, 2])],
                attributes: ["rank": .int(2), "alpha": .double(4), "target": .string(m.target)])
        }
        checkpoint.adapters = adapters
        let ckpt = dir.appendingPathComponent("lora.h5")
        try checkpoint.write(to: ckpt)
        let out = dir.appendingPathComponent("peft")
        let r = try BuiltBinary.safetune.run("export", "peft", ckpt.path, "-o", out.path, "--base-model", "tiny-gpt2", "--json")
        #expect(r.status == 0, "\(r.err)")
        let st = try SafetensorsFile(contentsOf: out.appendingPathComponent("adapter_model.safetensors"))
        #expect(st.names.count == 2 * adapters.groups.count)
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        #expect(config["r"] as? Int == 2 && config["base_model_name_or_path"] as? String == "tiny-gpt2")
    }

    @Test func badInputsGiveOneLineErrors() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing").path
        Self.expectOneLineError(try BuiltBinary.safetune.run("import", "hf", missing, "-o", dir.appendingPathComponent("x.h5").path),
                                mentioning: missing)
        // A folder without config.json.
        Self.expectOneLineError(try BuiltBinary.safetune.run("import", "hf", dir.path, "-o", dir.appendingPathComponent("x.h5").path),
                                mentioning: "config.json")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.h5").path))
        // Not HDF5, and a checkpoint cut in half.
        let text = dir.appendingPathComponent("notes.h5")
        try Data("hello\n".utf8).write(to: text)
        Self.expectOneLineError(try BuiltBinary.safetune.run("export", "hf", text.path, "-o", dir.appendingPathComponent("o").path),
                                mentioning: "not an HDF5 file")
        let ckpt = dir.appendingPathComponent("c.h5")
        try Checkpoint(config: TinyConfigs.gpt2, weights: randomWeights(TinyConfigs.gpt2)).write(to: ckpt)
        let bytes = try Data(contentsOf: ckpt)
        try bytes.prefix(bytes.count / 2).write(to: ckpt)
        Self.expectOneLineError(try BuiltBinary.safetune.run("inspect", ckpt.path), mentioning: ckpt.path)
        Self.expectOneLineError(try BuiltBinary.safetune.run("export", "peft", ckpt.path, "-o", dir.appendingPathComponent("p").path),
                                mentioning: ckpt.path)
    }

    /// A checkpoint whose damaged global heap makes libhdf5 1.10 segfault (found by the
    /// fuzzer): read in-process it kills the reader; `safetune` reads it in a helper
    /// process and reports one line, and the gate rejects it with JSON.
    @Test(.enabled(if: BuiltBinary.fuzzer.url != nil, "safetune-fuzz not built"))
    func fileThatCrashesLibHDF5IsAnErrorNotACrash() throws {
        let hostile = try Self.fixture("hostile/libhdf5-segfault.h5").path
        let inProcess = try BuiltBinary.fuzzer.run(["replay", "--target", "checkpoint", "--in-process", hostile],
                                                   environment: ["SWIFT_BACKTRACE": "enable=no"])
        #expect(inProcess.crashed, "the fixture no longer crashes libhdf5 in-process: \(inProcess.out)")

        Self.expectOneLineError(try BuiltBinary.safetune.run("inspect", hostile), mentioning: "crashed a helper process")
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let clean = dir.appendingPathComponent("clean.jsonl")
        try Data(#"{"prompt": "Name a fruit.", "completion": "An apple."}"#.utf8 + [0x0A]).write(to: clean)
        let verify = try BuiltBinary.safetune.run("verify", hostile, "--clean", clean.path, "--json")
        #expect(verify.status == 2 && !verify.crashed)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(verify.out.utf8)) as? [String: Any])
        #expect(report["verdict"] as? String == "reject")
        #expect((report["error"] as? String)?.contains("libhdf5-segfault.h5: reading it crashed a helper process") == true)
    }

    /// `safetune` reads a checkpoint through the helper's clean copy in the temporary
    /// folder, never the file itself: without a writable temporary folder it cannot read
    /// one (one line), and with one it leaves no copy behind. The overread fixture (found
    /// by the checkpoint campaign, seed 8801) faulted a fresh process that parsed it, while
    /// the helper's child read it; through the copy it reads. In-process tests of this
    /// would spawn helpers inside the test process, beside other suites' HDF5 work.
    @Test(.enabled(if: BuiltBinary.safetune.url != nil, "safetune not built"))
    func checkpointsAreReadThroughACleanCopy() throws {
        let file = try Self.fixture("hostile/libhdf5-overread.h5").path
        let temp = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: temp) }
        let read = try BuiltBinary.safetune.run(["inspect", file], environment: ["TMPDIR": temp.path])
        #expect(read.status == 0 && read.out.contains("model: gpt2, 1 layers"), "\(read.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.path).isEmpty)
        let missing = temp.appendingPathComponent("missing").path
        Self.expectOneLineError(try BuiltBinary.safetune.run(["inspect", file], environment: ["TMPDIR": missing]),
                                mentioning: "read in a helper process, but its clean copy could not be written")
    }

    /// The main loop through the real command line: a tokenizer trained by `safetune
    /// tokenizer train`, then `safetune train` learns a toy task; `--json` is one parseable
    /// object, and a recipe error is one line with exit status 2.
    @Test func trainLearnsAToyTaskThroughTheCommandLine() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pairs = [("What color is the sky?", "blue"), ("What color is grass?", "green"), ("What color is snow?", "white"),
                     ("What color is coal?", "black"), ("What color is a lemon?", "yellow"), ("What color is blood?", "red")]
        var lines = "", corpus = ""
        for (q, a) in pairs {
            lines += #"{"prompt": "\#(q)", "completion": " \#(a)"}"# + "\n"
            corpus += "### Instruction:\n\(q)\n\n### Response:\n \(a)\n"
        }
        try Data(lines.utf8).write(to: dir.appendingPathComponent("train.jsonl"))
        try Data(corpus.utf8).write(to: dir.appendingPathComponent("corpus.txt"))
        let tok = try BuiltBinary.safetune.run("tokenizer", "train", dir.appendingPathComponent("corpus.txt").path, "--vocab", "300",
                                         "--min-frequency", "1", "--special", "<|endoftext|>",
                                         "-o", dir.appendingPathComponent("tokenizer.json").path)
        #expect(tok.status == 0, "\(tok.err)")
        let recipe = """
            model:
              template: plain
              tokenizer: tokenizer.json
              init: {family: llama, layers: 2, d_model: 32, heads: 4, kv_heads: 2, d_ff: 64, context: 64}
            data: {train: [train.jsonl]}
            adapters: {kind: full}
            optimizer: {lr: 0.01}
            training: {steps: 50, batch_size: 6, seq_len: 48, seed: 5, threads: 1}
            eval: {every: 0}
            safety: {gate: {enabled: false}}
            output: {dir: out}
            """
        let url = dir.appendingPathComponent("recipe.yaml")
        try Data(recipe.utf8).write(to: url)
        let run = try BuiltBinary.safetune.run("train", url.path, "--json")
        #expect(run.status == 0, "\(run.err)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [String: Any])
        let loss = try #require(summary["final_loss"] as? Double)
        #expect(loss < 0.5, "final loss \(loss)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/model.h5").path))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/report.html").path))
        let bad = try BuiltBinary.safetune.run("train", url.path, "--set", "training.batchsize=4")
        Self.expectOneLineError(bad, mentioning: "training.batch_size")
    }
}
