import ArgumentParser
import Engine
import Foundation

/// `safetune bench`: forward + backward speed of a GPT-2-shaped block stack built from
/// engine ops, next to this machine's own SGEMM speed, so the ratio shows how much of
/// the BLAS peak the engine reaches.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time forward + backward of a transformer block stack and compare with raw SGEMM."
    )

    @Option(help: "Transformer blocks.") var layers = 6
    @Option(name: .customLong("d-model"), help: "Model width.") var dModel = 256
    @Option(help: "Attention heads.") var heads = 8
    @Option(name: .customLong("d-ff"), help: "MLP width.") var dFF = 1024
    @Option(help: "Sequences per step.") var batch = 8
    @Option(help: "Tokens per sequence.") var context = 256
    @Option(help: "Vocabulary size (tied output embedding).") var vocab = 8192
    @Option(help: "Timed steps (the median is reported).") var steps = 5
    @Option(help: "Untimed warm-up steps.") var warmup = 1
    @Option(help: "Threads for BLAS and engine kernels (default: all cores).") var threads: Int?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard layers > 0, dModel > 0, heads > 0, dFF > 0, batch > 0, context > 0, vocab > 0, steps > 0, warmup >= 0 else {
            throw ValidationError("bench: sizes and step counts must be positive")
        }
        guard dModel % heads == 0 else { throw ValidationError("bench: --d-model \(dModel) is not divisible by --heads \(heads)") }
        if let threads, threads < 1 { throw ValidationError("bench: --threads must be at least 1") }
    }

    func run() throws {
        let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
        Parallel.setThreads(threadCount)
        let stack = BenchStack(layers: layers, d: dModel, heads: heads, ff: dFF, context: context, vocab: vocab)
        var rng = SeededRandom(seed: 1)
        let count = batch * context
        let ids = (0...count).map { _ in Int32(rng.next() % UInt64(vocab)) }
        let inputs = Array(ids.dropLast()), targets = Array(ids.dropFirst())

        let tape = Tape()
        let sgemm = SgemmProbe(n: 1024)
        var times: [Double] = [], sgemmRates: [Double] = []
        var loss: Float = 0
        for step in 0..<(warmup + steps) {
            // Raw SGEMM between steps, so both numbers see the same machine load.
            if step >= warmup { sgemmRates.append(sgemm.run()) }
            let start = DispatchTime.now().uptimeNanoseconds
            for p in stack.params { p.zeroGrad() }
            let l = stack.loss(tape, ids: inputs, targets: targets, batch: batch)
            tape.backward(l)
            loss = l.value.scalars[0]
            tape.reset()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if step >= warmup { times.append(seconds) }
        }
        let median = times.sorted()[times.count / 2]
        let flops = stack.matmulFlops(batch: batch)
        let sgemmMedian = sgemmRates.sorted()[sgemmRates.count / 2]
        let report = Report(
            layers: layers, dModel: dModel, heads: heads, dFF: dFF, batch: batch, context: context, vocab: vocab,
            threads: threadCount, parameters: stack.params.reduce(0) { $0 + $1.value.count },
            medianStepSeconds: median, tokensPerSecond: Double(count) / median,
            matmulGFlopPerStep: flops / 1e9, achievedGFlops: flops / median / 1e9,
            sgemmGFlops: sgemmMedian, ratioToSgemm: flops / median / 1e9 / sgemmMedian, loss: loss,
            blas: BLAS.configuration)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("""
            shape: \(layers) layers, d_model \(dModel), \(heads) heads, d_ff \(dFF), batch \(batch), context \(context), \
            vocab \(vocab) (\(report.parameters) parameters), \(threadCount) threads
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

    /// The numbers `--json` prints.
    struct Report: Encodable {
        let layers, dModel, heads, dFF, batch, context, vocab, threads, parameters: Int
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

/// A GPT-2-shaped stack (learned positions, pre-LayerNorm blocks with fused QKV, GELU
/// MLP, tied output embedding) with random weights, built from engine ops only.
struct BenchStack {
    let layers, d, heads, ff, context, vocab: Int
    let params: [Variable]

    init(layers: Int, d: Int, heads: Int, ff: Int, context: Int, vocab: Int) {
        self.layers = layers
        self.d = d
        self.heads = heads
        self.ff = ff
        self.context = context
        self.vocab = vocab
        var rng = SeededRandom(seed: 42)
        func p(_ name: String, _ shape: [Int], std: Float = 0.02) -> Variable {
            let t = Tensor(zeros: shape)
            rng.fillNormal(t, std: std)
            return Variable(t, requiresGrad: true, name: name)
        }
        func fill(_ name: String, _ value: Float, _ n: Int) -> Variable {
            Variable(Tensor(repeating: value, shape: [n]), requiresGrad: true, name: name)
        }
        var ps = [p("wte", [vocab, d]), p("wpe", [context, d])]
        for l in 0..<layers {
            ps += [fill("h.\(l).ln_1.w", 1, d), fill("h.\(l).ln_1.b", 0, d),
                   p("h.\(l).attn.qkv.w", [3 * d, d]), fill("h.\(l).attn.qkv.b", 0, 3 * d),
                   p("h.\(l).attn.proj.w", [d, d]), fill("h.\(l).attn.proj.b", 0, d),
                   fill("h.\(l).ln_2.w", 1, d), fill("h.\(l).ln_2.b", 0, d),
                   p("h.\(l).mlp.fc.w", [ff, d]), fill("h.\(l).mlp.fc.b", 0, ff),
                   p("h.\(l).mlp.proj.w", [d, ff]), fill("h.\(l).mlp.proj.b", 0, d)]
        }
        ps += [fill("ln_f.w", 1, d), fill("ln_f.b", 0, d)]
        params = ps
    }

    /// Mean next-token cross-entropy of `ids` laid out as `[batch, context]`.
    func loss(_ t: Tape, ids: [Int32], targets: [Int32], batch: Int) -> Variable {
        let positions = (0..<batch * context).map { Int32($0 % context) }
        var h = t.add(t.embedding(ids: ids, shape: [batch, context], table: params[0]),
                      t.embedding(ids: positions, shape: [batch, context], table: params[1]))
        for l in 0..<layers {
            let w = Array(params[2 + 12 * l..<14 + 12 * l])
            let a = t.layerNorm(h, weight: w[0], bias: w[1], eps: 1e-5)
            let qkv = t.split(t.linear(a, w[2], bias: w[3]), sizes: [d, d, d])
            let att = t.attention(q: qkv[0], k: qkv[1], v: qkv[2], heads: heads, kvHeads: heads)
            h = t.add(h, t.linear(att, w[4], bias: w[5]))
            let m = t.layerNorm(h, weight: w[6], bias: w[7], eps: 1e-5)
            h = t.add(h, t.linear(t.gelu(t.linear(m, w[8], bias: w[9])), w[10], bias: w[11]))
        }
        let f = t.layerNorm(h, weight: params[params.count - 2], bias: params[params.count - 1], eps: 1e-5)
        return t.crossEntropy(logits: t.matmul(f, params[0], transposeB: true), targets: targets)
    }

    /// FLOPs of the GEMMs one forward + backward step executes: every forward GEMM has
    /// two backward GEMMs (both operands need gradients); attention counts the score
    /// blocks the causal kernel actually computes.
    func matmulFlops(batch: Int) -> Double {
        let n = Double(batch * context), dd = Double(d), ff = Double(ff)
        let attention = Tape.attentionForwardFlops(batch: batch, queries: context, keys: context, heads: heads,
                                                   headSize: d / heads, causal: true)
        let perLayer = 2 * n * dd * (3 * dd) + 2 * n * dd * dd + 2 * (2 * n * dd * ff) + attention
        let forward = Double(layers) * perLayer + 2 * n * dd * Double(vocab)
        return 3 * forward
    }
}
