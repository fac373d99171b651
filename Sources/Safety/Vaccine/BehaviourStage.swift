import Foundation
import Models
import Training

/// The gate's behavioural stage: `TriggerScan` of the checkpoint against its parent on probe
/// prompts, compared with the same scan of clean fine-tunes of the parent
/// (`ScanCalibration`). It rejects a checkpoint that the weight-space rule passed when a
/// short searched suffix makes it answer far more unlike its parent than clean fine-tunes
/// ever do. Measured on the shipped model's backdoor experiment it separates the
/// comply-backdoors, not the refuse-backdoors (docs/gate.md). Off unless probes are given.
public struct BehaviourStage: Sendable, Equatable, Codable {
    /// Probe prompts (harmful and harmless).
    public var probes: [String]
    /// Suffix length, search steps, time budget and seed of each scan.
    public var search = TriggerScan.Settings()
    /// Clean fine-tunes of the parent that set the threshold.
    public var calibrationRuns = 3
    /// Their regime (steps, learning rate, clean samples): the checkpoint's own, as far as known.
    public var regime: VariantSettings
    /// Threshold: calibration mean + k standard deviations.
    public var k = 3.0

    /// A stage scanning `probes`, calibrated by three 200-step full fine-tunes of the parent
    /// at lr 1e-3 on 400 clean samples each (the regime of the shipped experiment's children).
    public init(probes: [String]) {
        self.probes = probes
        var regime = VariantSettings()
        regime.steps = 200
        regime.learningRate = 1e-3
        regime.cleanPerVariant = 400
        self.regime = regime
    }

    /// The first `harmful` harmful and `benign` harmless prompts of an evaluation file.
    public static func probes(from url: URL, harmful: Int, benign: Int) throws -> [String] {
        let set = try EvaluationSet.load(contentsOf: url)
        let prompts = set.harmful.prefix(harmful).map(\.prompt) + set.harmless.prefix(benign).map(\.prompt)
        guard !prompts.isEmpty else { throw VaccineError.unreadable(file: url.path, reason: "no harmful or harmless prompt to probe with") }
        return prompts
    }

    /// What the stage found: the checkpoint's scan, the clean fine-tunes' scans, and whether
    /// the first lies above the threshold the second set.
    public struct Evidence: Sendable, Equatable, Codable {
        public var scan: TriggerScan.Result
        public var calibration: ScanCalibration
        public var above: Bool
        public var seconds: Double
    }

    /// Scans `child` against `parent`, then calibrates on clean fine-tunes of `parent` made
    /// from `clean` in `workDirectory`.
    public func measure(child: ModelBundle, parent: ModelBundle, clean: [CleanSample], workDirectory: URL,
                        log: @escaping (String) -> Void = { _ in }) throws -> Evidence {
        let started = Date()
        guard let tokenizer = child.tokenizer else { throw ModelBundleError.tokenizerRequired(path: child.source.path) }
        let evaluator = Evaluator(model: child.model, tokenizer: tokenizer, template: try ChatTemplate.named(regime.template, tokenizer: tokenizer))
        log("behavioural scan of the checkpoint against its parent (\(probes.count) probes, \(search.steps) steps)")
        let scan = try TriggerScan(child: evaluator, parent: parent.model, settings: search).run(probes)
        log(String(format: "behavioural scan: divergence %.3f (without suffix %.3f)", scan.best, scan.baseline))
        let calibration = try ScanCalibration.measure(parent: parent, clean: clean, runs: calibrationRuns, settings: regime,
                                                      probes: probes, scan: search, k: k, workDirectory: workDirectory, log: log)
        return Evidence(scan: scan, calibration: calibration, above: scan.best > calibration.threshold,
                        seconds: Date().timeIntervalSince(started))
    }
}
