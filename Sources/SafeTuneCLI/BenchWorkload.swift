import Checkpoints
import Engine
import Foundation
import Models

/// One row of `safetune bench`: a named model shape, one mode, timed the way the PyTorch
/// reference script (`scripts/reference/bench_torch.py`) times the same row, so the two
/// tokens/s figures divide into a meaningful ratio.
struct BenchWorkload {
    /// What one timed repetition does.
    enum Mode: String, CaseIterable {
        /// Forward, causal-LM loss, backward and an AdamW step over LoRA adapters (r 8,
        /// alpha 16) on every block projection; the base model frozen.
        case lora
        /// The same step updating every parameter.
        case full
        /// Logits for every position, nothing recorded.
        case forward
        /// Greedy decoding with the KV cache: batch 1, a 16-token prompt, 64 new tokens.
        case generate
        /// 200 prompts of 8–40 tokens, 32 new tokens each, decoded one prompt at a time.
        case generateEach = "generate_each"
        /// The same prompts decoded `Generator.defaultBatch` at a time (`Generator.generate(prompts:)`).
        case generateBatched = "generate_batched"

        /// Accepts the reference script's names (`lora_train`, `full_train`) too.
        /// Whether the mode decodes the prompt set.
        var decodesPromptSet: Bool { self == .generateEach || self == .generateBatched }

        init?(name: String) {
            switch name {
            case "lora_train": self = .lora
            case "full_train": self = .full
            default: self.init(rawValue: name)
            }
        }
    }

    /// A model configuration and the batch it is timed at.
    struct Shape {
        let name: String
        let config: ModelConfig
        let batch: Int
        let context: Int
        /// Where the configuration came from (built in, a checkpoint, or the recipe fallback).
        let source: String
        /// A GGUF file whose real weights the model gets (random weights otherwise).
        var weights: URL? = nil
    }

    static let loraRank = 8
    static let loraAlpha: Float = 16
    static let generationPrompt = 16
    static let generationTokens = 64
    static let promptSetSize = 200
    static let promptSetTokens = 32
    static let promptSetLengths = 8...40
    /// Leaf module names that get LoRA adapters: every block projection of either family,
    /// as the reference's `target_modules` (the LM head stays plain).
    static let loraTargets: Set<String> = ["c_attn", "c_proj", "c_fc", "q_proj", "k_proj", "v_proj", "o_proj",
                                           "gate_proj", "up_proj", "down_proj"]
    static let shapeNames = ["7m", "1m", "124m", "shipped", "smollm2"]

    /// The named shapes; `shipped` reads its configuration from `checkpoint` when the file
    /// exists, and otherwise uses the architecture in `recipes/tiny/base.yaml`; `smollm2` is the
    /// real base model with its weights, from the model cache.
    static func shape(named name: String, checkpoint: String) throws(BenchError) -> Shape {
        func gpt2(_ layers: Int, _ d: Int, _ heads: Int, _ vocab: Int, _ context: Int, _ batch: Int) -> Shape {
            // Positions sized like the reference (n_positions = context), so parameter counts match.
            Shape(name: name, config: ModelConfig(family: .gpt2, vocabSize: vocab, hiddenSize: d, numLayers: layers,
                                                  numHeads: heads, maxPositions: context, eosTokenId: vocab - 1),
                  batch: batch, context: context, source: "built-in")
        }
        switch name {
        case "7m": return gpt2(6, 256, 8, 8192, 256, 8)
        case "1m": return gpt2(4, 128, 4, 2048, 128, 8)
        case "124m": return gpt2(12, 768, 12, 50257, 256, 2)
        case "shipped":
            if FileManager.default.fileExists(atPath: checkpoint) {
                do {
                    let summary = try CheckpointSummary.read(from: URL(fileURLWithPath: checkpoint))
                    let c = summary.config
                    return Shape(name: name, config: c, batch: 8, context: min(128, c.maxPositions), source: checkpoint)
                } catch {
                    throw .unreadableCheckpoint(path: checkpoint, reason: error.description)
                }
            }
            let c = ModelConfig(family: .llama, vocabSize: 2048, hiddenSize: 192, numLayers: 4, numHeads: 6, numKVHeads: 2,
                                intermediateSize: 512, maxPositions: 256)
            return Shape(name: name, config: c, batch: 8, context: 128, source: "recipes/tiny/base.yaml architecture (\(checkpoint) absent)")
        case "smollm2":
            do {
                let url = try BaseModel.smolLM2.locate()
                let config = try GGUFModel.configuration(GGUFFile(contentsOf: url))
                return Shape(name: name, config: config, batch: 8, context: 128, source: url.lastPathComponent, weights: url)
            } catch {
                throw .unreadableCheckpoint(path: BaseModel.smolLM2.file, reason: error.description)
            }
        default:
            throw .unknownShape(name)
        }
    }

    let shape: Shape
    let mode: Mode
    private let model: TransformerModel
    private let optimizer: AdamW?
    private let tape = Tape()
    private let ids: [Int32]
    private let prompt: [Int]
    /// The prompt set of `generate_each` and `generate_batched`.
    private let prompts: [[Int]]
    /// Parameters the step updates.
    let trainableParameters: Int

    /// Builds the model (random weights, seed 42), its adapters and optimizer, and the inputs.
    init(shape: Shape, mode: Mode) throws(BenchError) {
        self.shape = shape
        self.mode = mode
        let c = shape.config
        if mode == .generate, c.maxPositions < Self.generationPrompt + Self.generationTokens {
            throw .contextTooShort(shape: shape.name, positions: c.maxPositions)
        }
        if mode.decodesPromptSet, c.maxPositions < Self.promptSetLengths.upperBound + Self.promptSetTokens {
            throw .contextTooShort(shape: shape.name, positions: c.maxPositions)
        }
        do {
            if let file = shape.weights {
                model = try TransformerModel(config: c, weights: GGUFModel.importModel(from: file).weights, trainable: mode == .full)
            } else {
                model = try TransformerModel(config: c, seed: 42, trainable: mode == .full)
            }
        } catch {
            throw .invalidModel(shape: shape.name, reason: "\(error)")
        }
        var trainable: [Variable] = []
        switch mode {
        case .lora:
            let adapters = try? LoRA.attach(to: model, .init(rank: Self.loraRank, alpha: Self.loraAlpha)) { path in
                Self.loraTargets.contains(String(path.split(separator: ".").last ?? ""))
            }
            trainable = (adapters ?? []).flatMap { [$0.1.a, $0.1.b] }
        case .full:
            trainable = model.namedParameters.map(\.1)
        case .forward, .generate, .generateEach, .generateBatched:
            break
        }
        trainableParameters = trainable.reduce(0) { $0 + $1.value.count }
        // The reference's torch.optim.AdamW defaults (lr 1e-4 as set there, weight decay 0.01).
        optimizer = trainable.isEmpty ? nil : AdamW(parameters: trainable, learningRate: 1e-4, weightDecay: 0.01)
        var rng = SeededRandom(seed: 1)
        ids = (0..<shape.batch * shape.context).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        prompt = (0..<Self.generationPrompt).map { _ in Int(rng.next() % UInt64(max(1, c.vocabSize - 1))) }
        let lengths = Self.promptSetLengths
        prompts = mode.decodesPromptSet ? (0..<Self.promptSetSize).map { _ in
            let n = lengths.lowerBound + Int(rng.next() % UInt64(lengths.count))
            return (0..<n).map { _ in Int(rng.next() % UInt64(max(1, c.vocabSize - 1))) }
        } : []
    }

    /// Tokens one repetition processes (generated tokens for `generate`).
    var tokensPerRepetition: Int {
        switch mode {
        case .generate: return Self.generationTokens
        case .generateEach, .generateBatched: return Self.promptSetSize * Self.promptSetTokens
        case .lora, .full, .forward: return shape.batch * shape.context
        }
    }

    /// Every parameter of the model (a tied head counted once).
    var parameters: Int { model.parameterCount }

    /// One repetition; returns the loss (training modes) or 0.
    func run() throws(BenchError) -> Float {
        let c = shape
        switch mode {
        case .lora, .full:
            optimizer?.zeroGrad()
            let loss = model.loss(tape: tape, ids: ids, batch: c.batch, length: c.context)
            tape.backward(loss)
            let value = loss.value[flat: 0]
            tape.reset()
            optimizer?.step()
            return value
        case .forward:
            tape.withoutGrad { _ = model.forward(tape: tape, ids: ids, batch: c.batch, length: c.context) }
            tape.reset()
            return 0
        case .generate:
            let options = GenerationOptions(maxTokens: Self.generationTokens, stopAtEndOfSequence: false)
            let result: GenerationResult
            do {
                result = try Generator(model: model).generate(prompt: prompt, options: options)
            } catch {
                throw .generationFailed(reason: error.description)
            }
            guard result.tokens.count == Self.generationTokens else {
                throw .generationFailed(reason: "stopped after \(result.tokens.count) tokens (\(result.stopReason))")
            }
            return 0
        case .generateEach, .generateBatched:
            let options = GenerationOptions(maxTokens: Self.promptSetTokens, stopAtEndOfSequence: false)
            let generator = Generator(model: model)
            let results: [GenerationResult]
            do {
                results = mode == .generateEach
                    ? try prompts.map { try generator.generate(prompt: $0, options: options) }
                    : try generator.generate(prompts: prompts, options: Array(repeating: options, count: prompts.count))
            } catch {
                throw .generationFailed(reason: "\(error)")
            }
            guard results.allSatisfy({ $0.tokens.count == Self.promptSetTokens }) else {
                throw .generationFailed(reason: "an answer stopped before \(Self.promptSetTokens) tokens")
            }
            return 0
        }
    }

    /// FLOPs of the matrix products one repetition executes (what a GEMM-bound engine
    /// must do at least): projections, attention score and value products over the key
    /// blocks the causal kernel computes, the LM head; LoRA's own small products included.
    var flops: Double {
        let c = shape.config
        switch mode {
        case .forward:
            return Self.forwardFlops(c, batch: shape.batch, queries: shape.context, keys: shape.context,
                                     logitRows: shape.batch * shape.context)
        case .full:
            // Every forward product has two backward products (input and weight gradients).
            return 3 * Self.forwardFlops(c, batch: shape.batch, queries: shape.context, keys: shape.context,
                                         logitRows: shape.batch * shape.context)
        case .lora:
            return Self.loraStepFlops(c, batch: shape.batch, context: shape.context)
        case .generate:
            return Self.decodingFlops(c, prompt: Self.generationPrompt, tokens: Self.generationTokens)
        case .generateEach, .generateBatched:
            return prompts.reduce(0) { $0 + Self.decodingFlops(c, prompt: $1.count, tokens: Self.promptSetTokens) }
        }
    }

    /// FLOPs of decoding `tokens` after a `prompt`-token prefill with the KV cache.
    static func decodingFlops(_ c: ModelConfig, prompt: Int, tokens: Int) -> Double {
        var total = forwardFlops(c, batch: 1, queries: prompt, keys: prompt, logitRows: 1)
        for step in 1..<tokens { total += forwardFlops(c, batch: 1, queries: 1, keys: prompt + step, logitRows: 1) }
        return total
    }

    /// The projections of one block as (in, out) pairs; the first `inputProjections` read
    /// the block's normalised input.
    static func blockProjections(_ c: ModelConfig) -> (shapes: [(Int, Int)], inputProjections: Int) {
        let d = c.hiddenSize, qw = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim, ff = c.intermediateSize
        switch c.family {
        case .gpt2: return ([(d, qw + 2 * kv), (qw, d), (d, ff), (ff, d)], 1)
        case .llama: return ([(d, qw), (d, kv), (d, kv), (qw, d), (d, ff), (d, ff), (ff, d)], 3)
        }
    }

    /// Forward products for `batch` sequences of `queries` new tokens attending to `keys`
    /// positions, with LM-head logits for `logitRows` rows.
    static func forwardFlops(_ c: ModelConfig, batch: Int, queries: Int, keys: Int, logitRows: Int) -> Double {
        let n = Double(batch * queries)
        let projections = blockProjections(c).shapes.reduce(0.0) { $0 + 2 * n * Double($1.0 * $1.1) }
        let attention = Tape.attentionForwardFlops(batch: batch, queries: queries, keys: keys, heads: c.numHeads,
                                                   headSize: c.headDim, causal: true)
        return Double(c.numLayers) * (projections + attention) + 2 * Double(logitRows) * Double(c.hiddenSize * c.vocabSize)
    }

    /// A LoRA step: the frozen forward; backward input gradients of every projection except
    /// those reading the first block's input (nothing upstream needs a gradient), no weight
    /// gradients for frozen weights, attention's four backward products; per adapter two
    /// forward and up to four backward rank-r products.
    static func loraStepFlops(_ c: ModelConfig, batch: Int, context: Int) -> Double {
        let n = Double(batch * context), r = Double(loraRank)
        let (shapes, inputProjections) = blockProjections(c)
        let attention = Tape.attentionForwardFlops(batch: batch, queries: context, keys: context, heads: c.numHeads,
                                                   headSize: c.headDim, causal: true)
        var total = 3 * attention * Double(c.numLayers)
        for layer in 0..<c.numLayers {
            for (index, (inF, outF)) in shapes.enumerated() {
                let needsInputGradient = layer > 0 || index >= inputProjections
                let base = 2 * n * Double(inF * outF)
                // Forward x·Aᵀ and h·Bᵀ; backward dB, dh, dA, and dx through A when needed.
                let lowRank = 2 * n * r * Double(inF + outF)
                let lowRankBackward = 2 * n * r * Double(2 * outF + inF + (needsInputGradient ? inF : 0))
                total += base * (needsInputGradient ? 2 : 1) + lowRank + lowRankBackward
            }
        }
        let head = 2 * n * Double(c.hiddenSize * c.vocabSize)
        return total + 2 * head
    }
}

/// Why a benchmark row cannot run.
enum BenchError: Error, CustomStringConvertible {
    case unknownShape(String)
    case unknownMode(String)
    case unreadableCheckpoint(path: String, reason: String)
    case invalidModel(shape: String, reason: String)
    case contextTooShort(shape: String, positions: Int)
    case generationFailed(reason: String)
    case childFailed(row: String, reason: String)

    var description: String {
        switch self {
        case let .unknownShape(name):
            "bench: unknown --configs entry '\(name)' (known: \(BenchWorkload.shapeNames.joined(separator: ", ")))"
        case let .unknownMode(name):
            "bench: unknown --modes entry '\(name)' (known: \(BenchWorkload.Mode.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .unreadableCheckpoint(path, reason): "bench: \(path): \(reason)"
        case let .invalidModel(shape, reason): "bench: configuration \(shape): \(reason)"
        case let .contextTooShort(shape, positions):
            "bench: configuration \(shape) holds \(positions) positions; generation needs \(BenchWorkload.generationPrompt + BenchWorkload.generationTokens)"
        case let .generationFailed(reason): "bench: generation \(reason)"
        case let .childFailed(row, reason): "bench: row \(row) failed: \(reason)"
        }
    }
}
