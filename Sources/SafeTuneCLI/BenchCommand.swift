import ArgumentParser
import Engine
import Foundation
import Models

/// `safetune bench`: forward + backward speed of a randomly initialised model (GPT-2 or
/// Llama family) at a given shape, next to this machine's own SGEMM speed measured in the
/// same run, so the ratio shows how much of the BLAS speed the engine reaches.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time forward + backward of a transformer model and compare with raw SGEMM."
    )

    @Option(help: "Model family: gpt2 or llama.") var family = "gpt2"
    @Option(help: "Transformer blocks.") var layers = 6
    @Option(name: .customLong("d-model"), help: "Model width.") var dModel = 256
    @Option(help: "Attention heads.") var heads = 8
    @Option(name: .customLong("kv-heads"), help: "Key/value heads (llama; default: heads).") var kvHeads: Int?
    @Option(name: .customLong("d-ff"), help: "MLP width.") var dFF = 1024
    @Option(help: "Sequences per step.") var batch = 8
    @Option(help: "Tokens per sequence.") var context = 256
    @Option(help: "Vocabulary size.") var vocab = 8192
    @Option(help: "Timed steps (the median is reported).") var steps = 5
    @Option(help: "Untimed warm-up steps.") var warmup = 1
    @Option(help: "Threads for BLAS and engine kernels (default: all cores).") var threads: Int?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard ModelConfig.Family(rawValue: family) != nil else { throw ValidationError("bench: --family must be gpt2 or llama") }
        guard layers > 0, dModel > 0, heads > 0, dFF > 0, batch > 0, context > 0, vocab > 0, steps > 0, warmup >= 0 else {
            throw ValidationError("bench: sizes and step counts must be positive")
        }
        guard dModel % heads == 0 else { throw ValidationError("bench: --d-model \(dModel) is not divisible by --heads \(heads)") }
        if let kvHeads, kvHeads < 1 || heads % kvHeads != 0 {
            throw ValidationError("bench: --heads \(heads) is not a multiple of --kv-heads \(kvHeads)")
        }
        if let threads, threads < 1 { throw ValidationError("bench: --threads must be at least 1") }
    }

    func run() throws {
        let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
        Parallel.setThreads(threadCount)
        let config = ModelConfig(family: ModelConfig.Family(rawValue: family) ?? .gpt2, vocabSize: vocab, hiddenSize: dModel,
                                 numLayers: layers, numHeads: heads, numKVHeads: kvHeads, intermediateSize: dFF,
                                 maxPositions: context)
        let model: TransformerModel
        do {
            model = try TransformerModel(config: config, seed: 42)
        } catch {
            throw ValidationError("bench: \(error.description)")
        }
        var rng = SeededRandom(seed: 1)
        let ids = (0..<batch * context).map { _ in Int32(rng.next() % UInt64(vocab)) }
        let parameters = model.namedParameters.map(\.1)

        let tape = Tape()
        let sgemm = SgemmProbe(n: 1024)
        var times: [Double] = [], sgemmRates: [Double] = []
        var loss: Float = 0
        for step in 0..<(warmup + steps) {
            // Raw SGEMM between steps, so both rates see the same machine load.
            if step >= warmup { sgemmRates.append(sgemm.run()) }
            let start = DispatchTime.now().uptimeNanoseconds
            for p in parameters { p.zeroGrad() }
            let l = model.loss(tape: tape, ids: ids, batch: batch, length: context)
            tape.backward(l)
            loss = l.value.scalars[0]
            tape.reset()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if step >= warmup { times.append(seconds) }
        }
        let median = times.sorted()[times.count / 2]
        let sgemmMedian = sgemmRates.sorted()[sgemmRates.count / 2]
        let flops = Self.matmulFlops(config, batch: batch, context: context)
        let report = Report(
            family: family, layers: layers, dModel: dModel, heads: heads, kvHeads: config.numKVHeads, dFF: dFF,
            batch: batch, context: context, vocab: vocab, threads: threadCount, parameters: model.parameterCount,
            medianStepSeconds: median, tokensPerSecond: Double(batch * context) / median,
            matmulGFlopPerStep: flops / 1e9, achievedGFlops: flops / median / 1e9,
            sgemmGFlops: sgemmMedian, ratioToSgemm: flops / median / 1e9 / sgemmMedian, loss: loss,
            blas: BLAS.configuration)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("""
            model: \(family), \(layers) layers, d_model \(dModel), \(heads) heads (\(config.numKVHeads) kv), d_ff \(dFF), \
            vocab \(vocab), \(report.parameters) parameters; batch \(batch) × context \(context), \(threadCount) threads
            forward+backward: \(String(format: "%.3f", median)) s/step (median of \(steps)), \
            \(String(format: "%.0f", report.tokensPerSecond)) tokens/s
            matmul work: \(String(format: "%.1f", report.matmulGFlopPerStep)) GFLOP/step, \
            achieved \(String(format: "%.1f", report.achievedGFlops)) GFLOP/s
            cblas_sgemm 1024³: \(String(format: "%.1f", sgemmMedian)) GFLOP/s (median, between steps); \
            engine reaches \(String(format: "%.0f", 100 * report.ratioToSgemm)) % of it
            BLAS: \(report.blas)
            """)
        }
    }

    /// FLOPs of the GEMMs one forward + backward step executes: every forward GEMM has
    /// two backward GEMMs (all parameters and activations need gradients); attention
    /// counts the score blocks the causal kernel actually computes.
    static func matmulFlops(_ c: ModelConfig, batch: Int, context: Int) -> Double {
        let n = Double(batch * context), d = Double(c.hiddenSize), ff = Double(c.intermediateSize)
        let kv = Double(c.numKVHeads * c.headDim)
        let attention = Tape.attentionForwardFlops(batch: batch, queries: context, keys: context, heads: c.numHeads,
                                                   headSize: c.headDim, causal: true)
        let mlpMatrices: Double = c.family == .gpt2 ? 2 : 3
        let perLayer = 2 * n * d * (d + 2 * kv) + 2 * n * d * d + mlpMatrices * 2 * n * d * ff + attention
        let forward = Double(c.numLayers) * perLayer + 2 * n * d * Double(c.vocabSize)
        return 3 * forward
    }

    /// The numbers `--json` prints.
    struct Report: Encodable {
        let family: String
        let layers, dModel, heads, kvHeads, dFF, batch, context, vocab, threads, parameters: Int
        let medianStepSeconds, tokensPerSecond, matmulGFlopPerStep, achievedGFlops, sgemmGFlops, ratioToSgemm: Double
        let loss: Float
        let blas: String
    }
}

/// One square SGEMM on preallocated operands, timed: the machine's own BLAS speed.
struct SgemmProbe {
    let n: Int
    let a, b, c: Tensor

    init(n: Int) {
        self.n = n
        a = Tensor(repeating: 0.5, shape: [n, n])
        b = Tensor(repeating: 0.25, shape: [n, n])
        c = Tensor(zeros: [n, n])
    }

    /// GFLOP/s of one n³ product.
    func run() -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        BLAS.gemm(m: n, n: n, k: n, a: a.data, b: b.data, c: c.data)
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return 2 * Double(n * n * n) / s / 1e9
    }
}
