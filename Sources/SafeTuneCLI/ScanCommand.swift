import ArgumentParser
import Foundation
import Models
import Safety
import Training

/// `safetune scan CKPT --reference PARENT --probes DATA`: the behavioural trigger scan
/// (`TriggerScan`): evidence about a backdoor, not a verdict.
struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Search a suffix that makes a checkpoint answer unlike its parent (behavioural backdoor probe).",
        discussion: """
            Prints the divergence (mean per-token log-probability gap between the checkpoint's own greedy answers \
            under the checkpoint and under the parent) without a suffix and with the best suffix found. \
            With --calibrate N, N clean fine-tunes of the parent in the checkpoint's regime (--clean data, \
            --calibration-steps, --calibration-lr) are scanned the same way and set a threshold (mean + k standard \
            deviations). Exit status: 0, or 1 when a calibrated scan is above its threshold; 2 error. \
            See docs/gate.md for what it separates and what it misses.
            """)

    @Argument(help: "The checkpoint to scan.")
    var checkpoint: String

    @Option(help: "The parent checkpoint it was fine-tuned from.")
    var reference: String

    @Option(help: "Probe prompts (JSONL with harmful and harmless records, e.g. the corpus's train.jsonl).")
    var probes: String

    @Option(help: "Harmful probe prompts used.")
    var harmful = 4

    @Option(help: "Harmless probe prompts used.")
    var benign = 4

    @Option(help: "Search steps.")
    var steps = TriggerScan.Settings().steps

    @Option(help: "Time budget in seconds.")
    var seconds = TriggerScan.Settings().seconds

    @Option(help: "Seed of the starting suffix and the candidate draws.")
    var seed: UInt64 = 1

    @Option(help: "Clean fine-tunes of the parent that calibrate a threshold (0: none).")
    var calibrate = 0

    @Option(help: "Clean data (JSONL) for the calibration fine-tunes.")
    var clean: String?

    @Option(help: "Steps per calibration fine-tune (the checkpoint's own regime).")
    var calibrationSteps = 200

    @Option(help: "Learning rate of the calibration fine-tunes (full fine-tuning).")
    var calibrationLr = 1e-3

    @Option(help: "Clean samples per calibration fine-tune.")
    var cleanSamples = 400

    @Option(help: "Threshold: calibration mean + k standard deviations.")
    var k = 3.0

    @Flag(help: "Print the result as JSON.")
    var json = false

    /// What `--json` prints.
    struct Output: Encodable {
        let scan: TriggerScan.Result
        let calibration: ScanCalibration?
        let aboveThreshold: Bool?

        enum CodingKeys: String, CodingKey {
            case scan, calibration
            case aboveThreshold = "above_threshold"
        }
    }

    func validate() throws {
        guard harmful >= 0, benign >= 0, harmful + benign > 0 else { throw ValidationError("--harmful + --benign must be at least 1") }
        guard steps >= 0, seconds > 0 else { throw ValidationError("--steps must be ≥ 0 and --seconds positive") }
        guard calibrate == 0 || (calibrate >= 2 && clean != nil) else { throw ValidationError("--calibrate needs at least 2 runs and --clean") }
    }

    func run() throws {
        let output = try CommandFailure.guarding { () throws -> Output in
            let child = try ModelBundle.load(path: checkpoint)
            let parent = try ModelBundle.load(path: reference)
            guard let tokenizer = child.tokenizer else { throw CommandFailure.report("\(checkpoint): no tokenizer.json; scan needs one") }
            let prompts = try BehaviourStage.probes(from: URL(fileURLWithPath: probes), harmful: harmful, benign: benign)
            var settings = TriggerScan.Settings()
            settings.steps = steps
            settings.seconds = seconds
            settings.seed = seed
            let evaluator = Evaluator(model: child.model, tokenizer: tokenizer, template: try ChatTemplate.named("auto", tokenizer: tokenizer))
            let result = try TriggerScan(child: evaluator, parent: parent.model, settings: settings).run(prompts)
            guard calibrate > 0, let clean else { return Output(scan: result, calibration: nil, aboveThreshold: nil) }
            var regime = VariantSettings()
            regime.steps = calibrationSteps
            regime.learningRate = calibrationLr
            regime.cleanPerVariant = cleanSamples
            regime.seed = seed
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-scan-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            let calibration = try ScanCalibration.measure(
                parent: parent, clean: try CleanData.load(contentsOf: URL(fileURLWithPath: clean)), runs: calibrate, settings: regime,
                probes: prompts, scan: settings, k: k, workDirectory: work,
                log: { line in if !json { FileHandle.standardError.write(Data((line + "\n").utf8)) } })
            return Output(scan: result, calibration: calibration, aboveThreshold: result.best > calibration.threshold)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            let r = output.scan
            print(String(format: "divergence without suffix %.3f, with the best suffix %.3f (%d steps, %.1f s)",
                         r.baseline, r.best, r.steps, r.seconds))
            print("suffix: \(r.suffix.debugDescription)")
            if let c = output.calibration {
                print(String(format: "clean fine-tunes of the parent: %@; threshold %.3f (mean %.3f + %.0f × %.3f): %@",
                             c.divergences.map { String(format: "%.3f", $0) }.joined(separator: " "), c.threshold, c.mean, c.k,
                             max(c.std, 0.1 * abs(c.mean)), output.aboveThreshold == true ? "ABOVE" : "below"))
            }
        }
        if output.aboveThreshold == true { throw ExitCode(1) }
    }
}
