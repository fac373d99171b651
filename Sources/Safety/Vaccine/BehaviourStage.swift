import Checkpoints
import Foundation
import Models
import Training

/// The gate's behavioural stage: `TriggerScan` of the checkpoint against its parent on probe
/// prompts, compared with the same scan of clean fine-tunes of the parent
/// (`CleanCalibration`). It rejects a checkpoint that the weight-space rule passed when a
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
    /// Where the calibration is kept between verifies (nil: measured every time). It
    /// depends only on the parent, the clean data, the probes and these settings, so a
    /// pipeline verifying many fine-tunes of one parent measures it once.
    public var calibrationFile: URL?

    /// A stage scanning `probes`, calibrated by three 200-step full fine-tunes of the parent
    /// at lr 1e-3 on 400 clean samples each (the regime of the shipped experiment's children).
    public init(probes: [String]) {
        self.probes = probes
        regime = .childRegime
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
        public var calibration: CleanCalibration
        public var above: Bool
        public var seconds: Double
    }

    /// Scans `child` against `parent`, then calibrates on clean fine-tunes of `parent` made
    /// from `clean` in `workDirectory`.
    public func measure(child: ModelBundle, parent: ModelBundle, clean: [CleanSample], workDirectory: URL,
                        log: @escaping (String) -> Void = { _ in }) throws -> Evidence {
        let started = Date()
        let scan = try self.scan(child: child, parent: parent.model, log: log)
        let calibration = try calibrate(parent: parent, clean: clean, workDirectory: workDirectory, log: log)
        return Evidence(scan: scan, calibration: calibration, above: scan.best > calibration.threshold,
                        seconds: Date().timeIntervalSince(started))
    }

    /// The scan of `child` against `parent` alone, without a threshold.
    public func scan(child: ModelBundle, parent: TransformerModel, log: @escaping (String) -> Void = { _ in }) throws -> TriggerScan.Result {
        guard let tokenizer = child.tokenizer else { throw ModelBundleError.tokenizerRequired(path: child.source.path) }
        let evaluator = Evaluator(model: child.model, tokenizer: tokenizer, template: try regime.chatTemplate(tokenizer: tokenizer))
        log("behavioural scan of the checkpoint against its parent (\(probes.count) probes, \(search.steps) steps)")
        let scan = try TriggerScan(child: evaluator, parent: parent, settings: search).run(probes)
        log(String(format: "behavioural scan: divergence %.3f (without suffix %.3f)", scan.best, scan.baseline))
        return scan
    }

    /// What a calibration depends on, as one SHA-256.
    func calibrationKey(parent: ModelBundle, clean: [CleanSample]) throws -> String {
        struct Material: Encodable {
            let parent: String, clean: [CleanSample], probes: [String], search: TriggerScan.Settings
            let runs: Int, regime: VariantSettings, k: Double
        }
        return try CalibrationFile.key(Material(parent: CalibrationFile.parentIdentity(parent), clean: clean, probes: probes, search: search,
                                                runs: calibrationRuns, regime: regime, k: k))
    }

    /// The clean fine-tunes' calibration: read from `calibrationFile` when it was made from
    /// the same inputs, else measured (and saved there).
    func calibrate(parent: ModelBundle, clean: [CleanSample], workDirectory: URL,
                   log: @escaping (String) -> Void) throws -> CleanCalibration {
        func measured() throws -> CleanCalibration {
            guard let tokenizer = parent.tokenizer else { throw ModelBundleError.tokenizerRequired(path: parent.source.path) }
            let template = try regime.chatTemplate(tokenizer: tokenizer)
            var divergences: [Double] = []
            try CleanCalibration.fineTunes(parent: parent, clean: clean, runs: calibrationRuns, settings: regime,
                                           workDirectory: workDirectory, log: log) { i, model in
                let evaluator = Evaluator(model: model, tokenizer: tokenizer, template: template)
                let r = try TriggerScan(child: evaluator, parent: parent.model, settings: search).run(probes)
                log(String(format: "calibration %d/%d: best divergence %.3f", i + 1, calibrationRuns, r.best))
                divergences.append(r.best)
            }
            return CleanCalibration(values: divergences, k: k)
        }
        guard let file = calibrationFile else { return try measured() }
        return try CalibrationFile(url: file, what: "scan calibration")
            .value(key: calibrationKey(parent: parent, clean: clean), log: log, measure: measured)
    }
}
