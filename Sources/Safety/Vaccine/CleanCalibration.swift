import Checkpoints
import Engine
import Foundation
import Models
import Training

/// What a gate statistic gives on models known to be clean: fine-tunes of the parent on
/// clean data in the checkpoint's own regime (steps, learning rate). The threshold,
/// mean + k · max(std, floor · |mean|), depends on the parent, the clean data and the regime
/// only, never on the checkpoint under test.
public struct CleanCalibration: Sendable, Equatable, Codable {
    /// The statistic on each clean fine-tune.
    public var values: [Double]
    public var mean: Double
    public var std: Double
    public var k: Double
    /// Smallest standard deviation used, relative to the mean (a few runs estimate it poorly).
    public var floor: Double
    public var threshold: Double

    /// A calibration from measured values.
    public init(values: [Double], k: Double, floor: Double = 0.1) {
        self.values = values
        self.k = k
        self.floor = floor
        mean = values.reduce(0, +) / Double(max(values.count, 1))
        let m = mean
        std = values.count > 1
            ? (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)).squareRoot() : 0
        threshold = mean + k * max(std, floor * abs(mean))
    }

    /// Fine-tunes `runs` copies of `parent` on `clean` (`settings`: kind, steps, learning
    /// rate, batch; `cleanPerVariant` samples each, seeds `settings.seed + i`) and hands
    /// each model to `measure`, in order; the fine-tunes' files are removed afterwards.
    public static func fineTunes(parent: ModelBundle, clean: [CleanSample], runs: Int, settings: VariantSettings,
                                 workDirectory: URL, log: @escaping (String) -> Void = { _ in },
                                 measure: (Int, TransformerModel) throws -> Void) throws {
        guard runs >= 2 else { throw VaccineError.invalidSetting(key: "calibration runs", reason: "needs at least 2, got \(runs)") }
        let factory = try VariantFactory(suspect: parent, clean: clean, settings: settings, workDirectory: workDirectory)
        for i in 0..<runs {
            let folder = workDirectory.appendingPathComponent("calibration-\(i)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            var rng = SeededRandom(seed: settings.seed &+ UInt64(i) &* 104_729)
            try CleanData.write(VariantFactory.sample(clean, count: settings.cleanPerVariant, rng: &rng),
                                to: folder.appendingPathComponent("clean.jsonl"))
            log("calibration \(i + 1)/\(runs): clean fine-tune of the parent, \(settings.steps) steps")
            try measure(i, try factory.fineTune(files: ["clean.jsonl"], folder: folder, name: "clean", seed: Int(settings.seed % 1_000_000) + i))
        }
    }
}
