import Engine
import Checkpoints
import Foundation
import Testing
import Models

/// A Hugging Face model folder under Fixtures/ with the outputs transformers computed for it
/// (see Fixtures/README.md): logits, loss, every parameter's gradient, a greedy generation.
struct ReferenceFixture {
    struct Expected: Decodable {
        struct Generation: Decodable {
            let prompt_ids: [Int]
            let max_new_tokens: Int
            let output_ids: [Int]
        }
        let input_ids: [[Int32]]
        let labels: [[Int32]]
        let loss: Float
        let gradient_names: [String]
        let generation: Generation
    }

    let name: String
    let config: ModelConfig
    let weights: [String: Tensor]
    let expected: Expected
    /// `logits`, `grad.<name>`, `hidden.*`.
    let tensors: [String: Tensor]

    static func folder(_ name: String) throws -> URL {
        let root = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        return root.appendingPathComponent(name)
    }

    init(_ name: String) throws {
        self.name = name
        let dir = try Self.folder(name)
        config = try ModelConfig.huggingFace(contentsOf: dir.appendingPathComponent("config.json"))
        weights = try SafetensorsFile(contentsOf: dir.appendingPathComponent("model.safetensors")).tensors()
        expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: dir.appendingPathComponent("expected.json")))
        tensors = try SafetensorsFile(contentsOf: dir.appendingPathComponent("expected.safetensors")).tensors()
    }

    var batch: Int { expected.input_ids.count }
    var length: Int { expected.input_ids.first?.count ?? 0 }
    var ids: [Int32] { expected.input_ids.flatMap { $0 } }
    var labels: [Int32] { expected.labels.flatMap { $0 } }
}

/// max|a − b| / max(max|b|, 1e-6): the error relative to the reference tensor's scale, so a
/// gradient with tiny entries is judged against its largest one rather than element by element.
func normRelativeError(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.count == b.count, "normRelativeError: \(a.shape) vs \(b.shape)")
    var diff: Float = 0, scale: Float = 0
    for i in 0..<a.count {
        diff = max(diff, abs(a.data[i] - b.data[i]))
        scale = max(scale, abs(b.data[i]))
    }
    return diff / max(scale, 1e-6)
}

/// Largest absolute elementwise difference between tensors.
func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
    maxAbsDiff(a.scalars, b.scalars)
}
