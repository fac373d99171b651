import ArgumentParser
import Engine
import Foundation

/// `safetune bench`: tokens/s of LoRA training, full fine-tuning, forward and KV-cache
/// generation on GPT-2-shaped models and the shipped model, next to this machine's own
/// `cblas_sgemm` rate measured in the same run, and the peak memory of each row.
///
/// Each (configuration, mode) row runs in its own process when several are asked for, so
/// one row's peak RSS never includes another's; `scripts/bench-compare` runs the PyTorch
/// reference on the same rows and prints the ratios.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time LoRA / full training steps, forward and generation; compare with raw SGEMM."
    )

    @Option(help: "Comma list of configurations: 7m, 1m, 124m, shipped, smollm2 (the real base model from the model cache).") var configs = "7m,1m"
    @Option(help: "Comma list of modes: lora, full, forward, generate, generate_each, generate_batched.") var modes = "lora,full,forward,generate"
    @Option(help: "Threads for BLAS and engine kernels (default: all cores).") var threads: Int?
    @Option(help: "Timed repetitions (the median is reported).") var steps = 5
    @Option(help: "Untimed repetitions first.") var warmup = 2
    @Option(help: "Checkpoint whose configuration the 'shipped' row uses.") var checkpoint = "checkpoints/base.h5"
    @Flag(help: "Print a JSON array of rows.") var json = false

    func validate() throws {
        guard steps > 0, warmup >= 0 else { throw ValidationError("bench: --steps must be positive and --warmup not negative") }
        if let threads, threads < 1 { throw ValidationError("bench: --threads must be at least 1") }
    }

    func run() throws {
        let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
        let rows: [(String, BenchWorkload.Mode)]
        do {
            rows = try Self.rows(configs: configs, modes: modes)
        } catch {
            Self.fail(error.description)
        }
        var reports: [Report] = []
        for (index, (config, mode)) in rows.enumerated() {
            let report: Report
            do {
                report = rows.count == 1
                    ? try measure(config: config, mode: mode, threads: threadCount)
                    : try measureInChild(config: config, mode: mode, threads: threadCount)
            } catch {
                Self.fail(error.description)
            }
            reports.append(report)
            if !json {
                if index == 0 { print(Self.header) }
                print(Self.line(report))
            }
        }
        if json {
            try printJSON(encoding: reports)
        } else if let first = reports.first {
            print("cblas_sgemm probe: 1024³, median of the probes run just before and just after the timed repetitions; BLAS: \(first.blas)")
        }
    }

    /// The (configuration, mode) rows asked for, in order.
    static func rows(configs: String, modes: String) throws(BenchError) -> [(String, BenchWorkload.Mode)] {
        let names = configs.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        for name in names where !BenchWorkload.shapeNames.contains(name) { throw .unknownShape(name) }
        var parsed: [BenchWorkload.Mode] = []
        for m in modes.split(separator: ",") {
            let name = String(m).trimmingCharacters(in: .whitespaces)
            guard let mode = BenchWorkload.Mode(name: name) else { throw .unknownMode(name) }
            parsed.append(mode)
        }
        if names.isEmpty { throw .unknownShape(configs) }
        if parsed.isEmpty { throw .unknownMode(modes) }
        return names.flatMap { n in parsed.map { (n, $0) } }
    }

    /// Times one row in this process.
    func measure(config: String, mode: BenchWorkload.Mode, threads: Int) throws(BenchError) -> Report {
        Parallel.setThreads(threads)
        let shape = try BenchWorkload.shape(named: config, checkpoint: checkpoint)
        let loadBefore = Self.loadAverage()
        // Raw SGEMM right before and right after the timed repetitions, so both rates see
        // the same machine load. Not between them: a probe's 12 MB of operands pushes the
        // model out of cache and OpenBLAS's threads spin after it, which slowed the next
        // step by up to 40 % on the small configurations (the reference script has no probe).
        // The operands are freed before the workload is built and the peak RSS read before
        // they come back, so the peak is the workload's own.
        var rates = SgemmProbe.rates(threads: threads, count: Self.probesPerSide)
        Thread.sleep(forTimeInterval: 0.5)
        let workload = try BenchWorkload(shape: shape, mode: mode)
        var times: [Double] = []
        var loss: Float = 0
        for _ in 0..<warmup { loss = try workload.run() }
        for _ in 0..<steps {
            let start = DispatchTime.now().uptimeNanoseconds
            loss = try workload.run()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let peakRSS = Self.peakRSSMegabytes()
        rates += SgemmProbe.rates(threads: threads, count: Self.probesPerSide)
        let median = Self.median(times), sgemm = Self.median(rates)
        let flops = workload.flops
        let c = shape.config
        return Report(
            config: config, mode: mode.rawValue, source: shape.source, family: c.family.rawValue,
            layers: c.numLayers, dModel: c.hiddenSize, heads: c.numHeads, kvHeads: c.numKVHeads, dFF: c.intermediateSize,
            vocab: c.vocabSize, context: shape.context, batch: shape.batch, tie: c.tieWordEmbeddings,
            prompt: mode == .generate ? BenchWorkload.generationPrompt : nil,
            newTokens: mode == .generate ? BenchWorkload.generationTokens : mode.decodesPromptSet ? BenchWorkload.promptSetTokens : nil,
            threads: threads, params: workload.parameters, trainableParams: workload.trainableParameters,
            steps: steps, warmup: warmup, medianS: median, minS: times.min() ?? median, maxS: times.max() ?? median,
            tokensPerS: Double(workload.tokensPerRepetition) / median, gflopPerStep: flops / 1e9,
            achievedGflops: flops / median / 1e9, sgemmGflops: sgemm, percentOfSgemm: 100 * flops / median / 1e9 / sgemm,
            peakRssMb: peakRSS, loadavg1m: [loadBefore, Self.loadAverage()],
            loss: mode == .lora || mode == .full ? Double(loss) : nil, blas: BLAS.configuration)
    }

    /// Times one row in a fresh process of this executable, so peak RSS is the row's own.
    func measureInChild(config: String, mode: BenchWorkload.Mode, threads: Int) throws(BenchError) -> Report {
        let row = "\(config)/\(mode.rawValue)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["bench", "--configs", config, "--modes", mode.rawValue, "--threads", String(threads),
                             "--steps", String(steps), "--warmup", String(warmup), "--checkpoint", checkpoint, "--json"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw .childFailed(row: row, reason: "cannot start: \(error.localizedDescription)")
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let last = errText.split(separator: "\n").last.map(String.init) ?? "exit \(process.terminationStatus)"
            throw .childFailed(row: row, reason: last)
        }
        guard let reports = try? JSONDecoder().decode([Report].self, from: data), let report = reports.first else {
            throw .childFailed(row: row, reason: "unreadable output")
        }
        return report
    }

    /// One line `error: ...` on standard error, exit status 2.
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        Foundation.exit(2)
    }

    /// SGEMM probes run before, and again after, a row's timed repetitions.
    static let probesPerSide = 3

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The 1-minute load average.
    static func loadAverage() -> Double {
        var load = [Double](repeating: 0, count: 3)
        return getloadavg(&load, 3) > 0 ? (load[0] * 100).rounded() / 100 : -1
    }

    /// Peak resident set size of this process so far, in MB (Linux reports KiB).
    static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    static let header = pad("config", 8) + pad("mode", 17) + ["tokens/s", "median ms", "GFLOP/s", "sgemm", "% sgemm",
                                                            "threads", "peak RSS MB"].map { pad($0, 12, left: true) }.joined()
        + "  load 1m (before→after)"

    static func line(_ r: Report) -> String {
        pad(r.config, 8) + pad(r.mode, 17)
            + [String(format: "%.1f", r.tokensPerS), String(format: "%.1f", r.medianS * 1000), String(format: "%.1f", r.achievedGflops),
               String(format: "%.1f", r.sgemmGflops), String(format: "%.1f%%", r.percentOfSgemm), String(r.threads),
               String(format: "%.1f", r.peakRssMb)].map { pad($0, 12, left: true) }.joined()
            + String(format: "  %.2f→%.2f", r.loadavg1m[0], r.loadavg1m.last ?? 0)
    }

    /// `text` padded with spaces to `width` (on the left for numbers).
    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? fill + text : text + fill
    }

    /// One measured row, as `--json` prints it (keys shared with the reference script;
    /// `context` and `batch` are the configuration's training shape in every mode).
    struct Report: Codable {
        let config, mode, source, family: String
        let layers, dModel, heads, kvHeads, dFF, vocab, context, batch: Int
        /// Whether the LM head shares the token embedding table.
        let tie: Bool
        /// Generation only (batch 1): prompt length and generated tokens.
        let prompt, newTokens: Int?
        let threads, params, trainableParams, steps, warmup: Int
        let medianS, minS, maxS, tokensPerS, gflopPerStep, achievedGflops, sgemmGflops, percentOfSgemm, peakRssMb: Double
        let loadavg1m: [Double]
        let loss: Double?
        let blas: String

        enum CodingKeys: String, CodingKey {
            case config, mode, source, family, layers, heads, vocab, context, batch, tie, prompt, threads, params, steps, warmup, loss, blas
            case dModel = "d_model", kvHeads = "kv_heads", dFF = "d_ff", newTokens = "new_tokens"
            case trainableParams = "trainable_params", medianS = "median_s", minS = "min_s", maxS = "max_s"
            case tokensPerS = "tokens_per_s", gflopPerStep = "gflop_per_step", achievedGflops = "achieved_gflops"
            case sgemmGflops = "sgemm_gflops", percentOfSgemm = "percent_of_sgemm", peakRssMb = "peak_rss_mb"
            case loadavg1m = "loadavg_1m"
        }
    }
}

/// One square SGEMM on preallocated operands through OpenBLAS's own threading, timed:
/// the machine's BLAS speed at the benchmark's thread count.
struct SgemmProbe {
    let n, threads: Int
    let a, b, c: Tensor

    init(n: Int, threads: Int) {
        self.n = n
        self.threads = threads
        a = Tensor(repeating: 0.5, shape: [n, n])
        b = Tensor(repeating: 0.25, shape: [n, n])
        c = Tensor(zeros: [n, n])
    }

    /// GFLOP/s of `count` products through a probe made for the call and freed after it.
    static func rates(n: Int = 1024, threads: Int, count: Int) -> [Double] {
        let probe = SgemmProbe(n: n, threads: threads)
        return (0..<count).map { _ in probe.run() }
    }

    /// GFLOP/s of one n³ product.
    func run() -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        BLAS.openBLASGemm(threads: threads, m: n, n: n, k: n, a: a.data, b: b.data, c: c.data)
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return 2 * Double(n * n * n) / s / 1e9
    }
}
