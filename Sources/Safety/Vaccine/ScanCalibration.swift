import Engine
import Foundation
import Models
import Training

/// What the trigger scan gives on models known to be clean: fine-tunes of the parent on
/// clean data in the checkpoint's own regime (steps, learning rate), scanned with the
/// same probes and settings. The threshold, mean + k · max(std, 10 % of the mean), depends
/// on the parent, the clean data and the regime only, never on the checkpoint under test.
public struct ScanCalibration: Sendable, Equatable, Codable {
    /// Best divergence of each clean fine-tune.
    public var divergences: [Double]
    public var mean: Double
    public var std: Double
    public var k: Double
    public var threshold: Double

    /// A calibration from measured divergences.
    public init(divergences: [Double], k: Double) {
        self.divergences = divergences
        self.k = k
        mean = divergences.reduce(0, +) / Double(max(divergences.count, 1))
        let m = mean
        std = divergences.count > 1
            ? (divergences.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(divergences.count - 1)).squareRoot() : 0
        threshold = mean + k * max(std, 0.1 * abs(mean))
    }

    /// Fine-tunes `runs` copies of `parent` on `clean` (`settings`: kind, steps, learning
    /// rate, batch; `cleanPerVariant` samples each, seeds `settings.seed + i`), scans each
    /// against `parent` on `probes`, and sets the threshold `k` deviations above their mean.
    public static func measure(parent: ModelBundle, clean: [CleanSample], runs: Int, settings: VariantSettings,
                               probes: [String], scan: TriggerScan.Settings, k: Double = 3, workDirectory: URL,
                               log: @escaping (String) -> Void = { _ in }) throws -> ScanCalibration {
        guard runs >= 2 else { throw VaccineError.invalidSetting(key: "calibration runs", reason: "needs at least 2, got \(runs)") }
        guard let tokenizer = parent.tokenizer else { throw ModelBundleError.tokenizerRequired(path: parent.source.path) }
        let factory = try VariantFactory(suspect: parent, clean: clean, settings: settings, workDirectory: workDirectory)
        let template = try ChatTemplate.named(settings.template, tokenizer: tokenizer)
        var divergences: [Double] = []
        for i in 0..<runs {
            let folder = workDirectory.appendingPathComponent("calibration-\(i)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            var rng = SeededRandom(seed: settings.seed &+ UInt64(i) &* 104_729)
            try CleanData.write(VariantFactory.sample(clean, count: settings.cleanPerVariant, rng: &rng),
                                to: folder.appendingPathComponent("clean.jsonl"))
            log("calibration \(i + 1)/\(runs): clean fine-tune of the parent, \(settings.steps) steps")
            let model = try factory.fineTune(files: ["clean.jsonl"], folder: folder, name: "clean", seed: Int(settings.seed % 1_000_000) + i)
            let evaluator = Evaluator(model: model, tokenizer: tokenizer, template: template)
            let r = try TriggerScan(child: evaluator, parent: parent.model, settings: scan).run(probes)
            log(String(format: "calibration %d/%d: best divergence %.3f", i + 1, runs, r.best))
            divergences.append(r.best)
        }
        return ScanCalibration(divergences: divergences, k: k)
    }
}
