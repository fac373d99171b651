import Engine
import Foundation
import Models
import Testing
@testable import Checkpoints

/// A SafeTune checkpoint read by h5py: names, shapes, values, attributes and digests.
@Suite struct H5pyInteropTests {
    @Test(.enabled(if: PythonH5py.enabled, "python3 with h5py not found (Debian: apt install python3-h5py)"))
    func h5pyReadsACheckpoint() throws {
        let python = try #require(PythonH5py.python)
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.h5")
        let c = fullCheckpoint(TinyConfigs.llama)
        try c.write(to: url)
        let output = try PythonH5py.run(python, """
        import h5py, json, sys, hashlib, numpy as np
        out = {}
        with h5py.File(sys.argv[1], "r") as f:
            out["format"] = f.attrs["format"]
            out["format_version"] = int(f.attrs["format_version"])
            out["family"] = f["config"].attrs["family"]
            out["hidden_size"] = int(f["config"].attrs["hidden_size"])
            out["weights"] = {k: list(v.shape) for k, v in f["weights"].items()}
            w = f["weights/model.layers.1.mlp.down_proj.weight"]
            out["down_first"] = [float(x) for x in w[0, :3]]
            out["down_dtype"] = str(w.dtype)
            out["digest_ok"] = all(hashlib.sha256(v[()].astype("<f4").tobytes()).hexdigest() == v.attrs["sha256"]
                                   for v in f["weights"].values())
            out["tokenizer"] = bytes(f["tokenizer"][()]).decode()
            out["classes"] = [int(x) for x in f["units/0/mlp/classes"][()]]
            out["classes_dtype"] = str(f["units/0/mlp/classes"].dtype)
            out["step"] = int(f["optimizer"].attrs["step"])
            out["recipe"] = f["provenance"].attrs["recipe"]
            out["verdict"] = f["gate"].attrs["verdict"]
            out["rank"] = int(f["adapters/model.layers.0.self_attn.q_proj"].attrs["rank"])
        print(json.dumps(out))
        """, arguments: [url.path])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(json["format"] as? String == "safetune-checkpoint")
        #expect(json["format_version"] as? Int == 1)
        #expect(json["family"] as? String == "llama" && json["hidden_size"] as? Int == 16)
        let shapes = try #require(json["weights"] as? [String: [Int]])
        #expect(shapes == c.weights.mapValues(\.shape))
        let expected = Array(c.weights["model.layers.1.mlp.down_proj.weight"]!.scalars.prefix(3)).map(Double.init)
        #expect(json["down_first"] as? [Double] == expected)
        #expect(json["down_dtype"] as? String == "float32")
        #expect(json["digest_ok"] as? Bool == true)
        #expect(json["tokenizer"] as? String == String(decoding: c.tokenizerJSON!, as: UTF8.self))
        #expect(json["classes"] as? [Int] == [0, 1, 2, 3, 3] && json["classes_dtype"] as? String == "int8")
        #expect(json["step"] as? Int == 17 && json["recipe"] as? String == c.provenance?.recipe)
        #expect(json["verdict"] as? String == "pass" && json["rank"] as? Int == 4)
    }
}

/// The documented layout is enough to write a checkpoint without SafeTune.
@Suite struct H5pyWrittenCheckpointTests {
    @Test(.enabled(if: PythonH5py.enabled, "python3 with h5py not found (Debian: apt install python3-h5py)"))
    func checkpointWrittenByH5pyIsAccepted() throws {
        let python = try #require(PythonH5py.python)
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("py.h5")
        let layout = ParameterLayout(config: TinyConfigs.gpt2)
        let shapes = layout.parameters.map { "\"\($0.name)\": \($0.shape)" }.joined(separator: ", ")
        try PythonH5py.run(python, """
        import h5py, hashlib, sys, numpy as np
        shapes = {\(shapes)}
        with h5py.File(sys.argv[1], "w") as f:
            f.attrs["format"] = "safetune-checkpoint"
            f.attrs["format_version"] = 1
            c = f.create_group("config")
            for k, v in dict(family="gpt2", vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, num_kv_heads=2,
                             intermediate_size=64, max_positions=32, norm_eps=1e-5, rope_theta=10000.0,
                             tie_word_embeddings=1, qkv_bias=1, output_bias=1, mlp_bias=1, bos_token_id=0, eos_token_id=1).items():
                c.attrs[k] = v
            for i, (name, shape) in enumerate(sorted(shapes.items())):
                data = (np.arange(int(np.prod(shape)), dtype="<f4") * 0.001 + i).reshape(shape)
                d = f.create_dataset("weights/" + name, data=data)
                d.attrs["sha256"] = hashlib.sha256(data.tobytes()).hexdigest()
        """, arguments: [url.path])
        let c = try Checkpoint.read(from: url)
        #expect(c.config == TinyConfigs.gpt2)
        let names = layout.parameters.map(\.name).sorted()
        for (i, name) in names.enumerated() {
            let t = try #require(c.weights[name])
            #expect(t[flat: 0] == Float(i) && t[flat: t.count - 1] == Float(t.count - 1) * 0.001 + Float(i))
        }
    }
}
