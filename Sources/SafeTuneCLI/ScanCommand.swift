import ArgumentParser
import Checkpoints
import Foundation
import Models
import Safety
import Training

/// `safetune scan CKPT --reference PARENT --probes DATA`: the gate's behavioural stage on its
/// own (`BehaviourStage`): evidence about a backdoor, calibrated when clean data is given.
struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Search a suffix that makes a checkpoint answer unlike its parent (behavioural backdoor probe).",
        discussion: """
            Prints the divergence (mean per-token log-probability gap between the checkpoint's own greedy answers \
            under the checkpoint and under the parent) without a suffix and with the best suffix found. \
            With --clean, clean fine-tunes of the parent in the checkpoint's regime (--scan-calibrate, \
            --calibration-steps, --calibration-lr, --calibration-samples) are scanned the same way and set a threshold (mean + k \
            standard deviations); `safetune verify --probes` runs the same stage after the weight-space rule. \
            Exit status: 0, or 1 when a calibrated scan is above its threshold; 2 error. \
            See docs/gate.md for what it separates and what it misses.
            """)

    @Argument(help: "The checkpoint to scan.")
    var checkpoint: String

    @Option(help: "The parent checkpoint it was fine-tuned from.")
    var reference: String

    @OptionGroup var behaviour: BehaviourOptions

    @OptionGroup var regime: RegimeOptions

    @Option(help: "Clean data (JSONL) for the calibration fine-tunes (none: no threshold).")
    var clean: String?

    @Option(help: "Seed of the starting suffix, the candidate draws and the calibration.")
    var seed: UInt64 = 1

    @Flag(help: "Print the result as JSON.")
    var json = false

    /// What `--json` prints.
    struct Output: Encodable {
        let scan: TriggerScan.Result
        let calibration: CleanCalibration?
        let aboveThreshold: Bool?

        enum CodingKeys: String, CodingKey {
            case scan, calibration
            case aboveThreshold = "above_threshold"
        }
    }

    func validate() throws {
        guard behaviour.probes != nil else { throw ValidationError("--probes is required") }
    }

    func run() throws {
        let output = try CommandFailure.guarding { () throws -> Output in
            let child = try ModelBundle.load(path: checkpoint)
            let parent = try ModelBundle.load(path: reference)
            let log: (String) -> Void = { line in if !json { FileHandle.standardError.write(Data((line + "\n").utf8)) } }
            let calibrationRegime = try regime.regime(seed: seed, checkpoint: URL(fileURLWithPath: checkpoint), log: log)
            guard let stage = try behaviour.stage(seed: seed, regime: calibrationRegime) else { throw CommandFailure.report("--probes is required") }
            guard let clean else { return Output(scan: try stage.scan(child: child, parent: parent.model, log: log), calibration: nil, aboveThreshold: nil) }
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-scan-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            let found = try stage.measure(child: child, parent: parent, clean: try CleanData.load(contentsOf: URL(fileURLWithPath: clean)),
                                          workDirectory: work, log: log)
            return Output(scan: found.scan, calibration: found.calibration, aboveThreshold: found.above)
        }
        if json {
            try printJSON(encoding: output)
        } else {
            let r = output.scan
            print(String(format: "divergence without suffix %.3f, with the best suffix %.3f (%d steps, %.1f s)",
                         r.baseline, r.best, r.steps, r.seconds))
            print("suffix: \(r.suffix.debugDescription)")
            if let c = output.calibration {
                print("clean fine-tunes of the parent: " + c.values.map { String(format: "%.3f", $0) }.joined(separator: " ")
                      + String(format: "; threshold %.3f (mean %.3f + %.0f × %.3f): ", c.threshold, c.mean, c.k, max(c.std, c.floor * abs(c.mean)))
                      + (output.aboveThreshold == true ? "ABOVE" : "below"))
            }
        }
        if output.aboveThreshold == true { throw ExitCode(1) }
    }
}
