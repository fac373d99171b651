import Checkpoints
import Foundation
import Models
import Tokenizers
import Training

/// Settings of the BD-VAX gate.
public struct GateConfiguration: Sendable, Equatable, Codable {
    public var variants = VariantSettings()
    /// Fraction of channels per layer and module in the signature.
    public var tau = 0.08
    /// Weight of the cosine-consistency term in the channel score.
    public var lambda = 1.0
    /// Standard deviations above the clean mean where the threshold sits.
    public var k = 3.0
    /// Floor of the standard deviation relative to the mean (few variants estimate it poorly).
    public var minRelativeStd = 0.1
    /// Which statistic decides (both are computed and reported).
    public var rule = DetectionRule.share
    /// Floor of the alignment statistic's standard deviation (cosines of clean updates scatter around 0).
    public var minAlignmentStd = 0.02
    /// Fine-tune the variants from the checkpoint under test (the paper's setting) or from
    /// its trusted parent (then the synthetic backdoors start where the real one did).
    public var variantsFromParent = false
    /// Where variants of the parent are kept between gates (used with `variantsFromParent`
    /// and the share rule; nil: fine-tuned every time).
    public var evidenceCache: GateEvidenceCache?
    /// Modules whose channels form the signature.
    public var modules: [UnitModule] = [.mlp, .attn]
    /// A verify taking longer than this rejects.
    public var timeLimit = 3600.0
    /// The direction stage after the weight-space rule (nil: off). By default it reads the
    /// parent's stored directions and runs on full-weight checkpoints (`DirectionStage.Probes`).
    public var direction: DirectionStage? = DirectionStage()
    /// The behavioural stage after the weight-space rule (nil: off).
    public var behaviour: BehaviourStage?
    /// Units the checkpoint's training could not change (the run's SSAH mask): the share
    /// is measured over the others (`UpdateShare`). Only the training gate sets it, from
    /// its own run; a mask claimed by a checkpoint would let an update pick where it is measured.
    public var frozen: UnitMask?

    /// The defaults.
    public init() {}
}

/// The statistic the gate compares with its calibrated threshold.
public enum DetectionRule: String, Sendable, Equatable, Codable, CaseIterable {
    /// Share of the update's energy on the signature channels, relative to the signature's
    /// share of channels block by block (`UpdateShare`; 1 for an update spread evenly).
    case share
    /// Cosine between the update and the variants' mean backdoor direction on the signature channels.
    case alignment
    /// The same cosine after removing the variants' mean clean-update direction from both sides.
    case residual
}

/// The BD-VAX gate: decides whether a checkpoint carries a backdoor, without its trigger
/// and without clean reference models.
///
/// Rule: the backdoor signature of the checkpoint (channels where synthetic backdoors,
/// fine-tuned into it with fresh triggers, consistently land) is computed from N variant
/// pairs. The statistic is the share of the checkpoint's own update (child − parent; for
/// LoRA the merged B·A) that falls on the signature, relative to the signature's share of
/// the channels of each block the update touches (`UpdateShare`). It is compared with the same share
/// for clean fine-tunes of the checkpoint (the clean variants, each measured on a signature
/// built without its own pair): threshold = mean + k · max(std, minRelativeStd · mean).
/// Above the threshold: reject. With a `DirectionStage` or a `BehaviourStage`, a checkpoint
/// the rule passes is also rejected when that stage's statistic lies above its own
/// calibrated threshold.
/// Any error: reject.
public struct Gate: Sendable {
    public var configuration: GateConfiguration

    /// A gate.
    public init(configuration: GateConfiguration = .init()) { self.configuration = configuration }

    /// The verdict on `update` (child − parent) given the variants' evidence.
    public func decide(update: ChannelUpdates, evidence: VariantEvidence, checkpoint: String = "checkpoint",
                       reference: String? = nil, started: Date = Date()) throws -> GateReport {
        let scoringStart = Date()
        let statistics = evidence.statistics
        let n = statistics.pairs
        guard n >= 2, evidence.cleanEnergies.count == n, evidence.backdooredEnergies.count == n else {
            throw VaccineError.invalidSetting(key: "variants", reason: "the gate needs at least 2 variant pairs, got \(n)")
        }
        guard update.isFinite else { throw VaccineError.nonFinite(file: checkpoint, tensor: "update") }
        let scorer = SignatureScorer(lambda: configuration.lambda)
        let modules = Set(configuration.modules)
        let scores = scorer.scores(statistics)
        let signature = Signature(scores: scores, tau: configuration.tau, modules: modules)
        let shapeBlocks = statistics.blocks.map(\.shape)
        guard shapeBlocks.map(\.units) == update.blocks.map(\.units) else {
            throw VaccineError.shapeMismatch(file: checkpoint, reason: "the update's channels differ from the variants'")
        }
        let frozen = configuration.frozen
        if let frozen, !shapeBlocks.allSatisfy({ b in
            let layers = frozen.flags(b.module)
            return b.layer < layers.count && layers[b.layer].count == b.units
        }) {
            throw VaccineError.shapeMismatch(file: checkpoint, reason: "the run's unit mask does not fit the checkpoint's channels")
        }
        // Leave-one-out calibration: pair i's own updates are measured on a signature it did not shape.
        let vectors = evidence.deltas.count == n && evidence.cleanUpdates.count == n && evidence.backdooredUpdates.count == n
        var cleanShares: [Double] = [], bdShares: [Double] = [], cleanAlign: [Double] = [], bdAlign: [Double] = []
        var cleanResidual: [Double] = [], bdResidual: [Double] = []
        for i in 0..<n {
            let sig = Signature(scores: scorer.scores(statistics.excluding(i)), tau: configuration.tau, modules: modules)
            cleanShares.append(UpdateShare(energies: evidence.cleanEnergies[i], blocks: shapeBlocks, signature: sig, frozen: frozen).share)
            bdShares.append(UpdateShare(energies: evidence.backdooredEnergies[i], blocks: shapeBlocks, signature: sig, frozen: frozen).share)
            if vectors, let direction = ChannelUpdates.mean(evidence.deltas.enumerated().filter { $0.offset != i }.map(\.element)) {
                cleanAlign.append(evidence.cleanUpdates[i].alignment(with: direction, signature: sig))
                bdAlign.append(evidence.backdooredUpdates[i].alignment(with: direction, signature: sig))
                let drift = ChannelUpdates.mean(evidence.cleanUpdates.enumerated().filter { $0.offset != i }.map(\.element))
                cleanResidual.append(evidence.cleanUpdates[i].alignment(with: direction, signature: sig, removing: drift))
                bdResidual.append(evidence.backdooredUpdates[i].alignment(with: direction, signature: sig, removing: drift))
            }
        }
        func meanStd(_ xs: [Double]) -> (Double, Double) {
            let m = xs.reduce(0, +) / Double(max(xs.count, 1))
            return (m, xs.count > 1 ? (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)).squareRoot() : 0)
        }
        let (mean, std) = meanStd(cleanShares)
        let shareThreshold = mean + configuration.k * max(std, configuration.minRelativeStd * mean)
        let share = UpdateShare(update: update, signature: signature, frozen: frozen)
        guard share.energy > 0 else { throw VaccineError.shapeMismatch(file: checkpoint, reason: "the checkpoint does not differ from its parent") }
        var alignment: Double?, alignmentThreshold: Double?, residual: Double?, residualThreshold: Double?
        if vectors, let direction = ChannelUpdates.mean(evidence.deltas) {
            let (am, astd) = meanStd(cleanAlign)
            alignment = update.alignment(with: direction, signature: signature)
            alignmentThreshold = am + configuration.k * max(astd, configuration.minAlignmentStd)
            let (rm, rstd) = meanStd(cleanResidual)
            residual = update.alignment(with: direction, signature: signature, removing: ChannelUpdates.mean(evidence.cleanUpdates))
            residualThreshold = rm + configuration.k * max(rstd, configuration.minAlignmentStd)
        }
        let statistic: Double, threshold: Double
        switch configuration.rule {
        case .share: (statistic, threshold) = (share.share, shareThreshold)
        case .alignment:
            guard let alignment, let alignmentThreshold else {
                throw VaccineError.invalidSetting(key: "rule", reason: "alignment needs the variants' update vectors")
            }
            (statistic, threshold) = (alignment, alignmentThreshold)
        case .residual:
            guard let residual, let residualThreshold else {
                throw VaccineError.invalidSetting(key: "rule", reason: "residual needs the variants' update vectors")
            }
            (statistic, threshold) = (residual, residualThreshold)
        }
        let verdict: GateReport.Verdict = statistic > threshold ? .reject : .pass
        let layers = signature.entries.map { e in
            GateReport.LayerEvidence(layer: e.layer, module: e.module.rawValue, channels: e.units.count, signatureScore: e.meanSelected,
                                     meanScore: e.meanAll,
                                     share: share.layers.first { $0.layer == e.layer && $0.module == e.module }?.share ?? 0)
        }
        let channelShare = 100 * Double(signature.count) / Double(max(shapeBlocks.filter { modules.contains($0.module) }.reduce(0) { $0 + $1.units }, 1))
        let reason = configuration.rule == .share
            ? String(format: "the signature's channels (%.1f %%) carry %.2f× their share of the update's energy; threshold %.2f×",
                     channelShare, share.share, threshold)
            : (configuration.rule == .residual ? "update aligned (clean drift removed)" : "update aligned")
            + String(format: " with the synthetic backdoor direction at cosine %.3f on the signature (%.1f %% of channels); threshold %.3f",
                     statistic, channelShare, threshold)
        let v = configuration.variants
        return GateReport(
            verdict: verdict, reason: reason, statistic: statistic, threshold: threshold,
            calibration: .init(cleanShares: cleanShares, backdooredShares: bdShares, cleanMean: mean, cleanStd: std,
                               k: configuration.k, minRelativeStd: configuration.minRelativeStd,
                               cleanAlignments: cleanAlign, backdooredAlignments: bdAlign,
                               cleanResiduals: cleanResidual, backdooredResiduals: bdResidual),
            layers: layers,
            settings: .init(pairs: n, tau: configuration.tau, lambda: configuration.lambda, kind: v.kind, rule: configuration.rule,
                            variantsFromParent: configuration.variantsFromParent, steps: v.steps, modules: configuration.modules,
                            frozenUnits: frozen.map { $0.count(.mlp) + $0.count(.attn) } ?? 0),
            timings: .init(variants: evidence.seconds, scoring: Date().timeIntervalSince(scoringStart),
                           total: Date().timeIntervalSince(started)),
            error: nil, checkpoint: checkpoint, reference: reference, date: ISO8601DateFormatter().string(from: Date()),
            share: share.share, shareThreshold: shareThreshold, alignment: alignment, alignmentThreshold: alignmentThreshold,
            residual: residual, residualThreshold: residualThreshold)
    }

    /// Verifies the checkpoint at `url` against its parent (`reference`, or the parent its
    /// provenance names), fine-tuning variants on `clean` in `workDirectory`. Never throws:
    /// every error is a reject report (fail closed).
    public func verify(_ url: URL, reference: URL?, clean: [CleanSample], workDirectory: URL,
                       log: @escaping (String) -> Void = { _ in }) -> GateReport {
        verifyKeepingEvidence(url, reference: reference, clean: clean, workDirectory: workDirectory, log: log).report
    }

    /// `verify`, also returning the variants' evidence (nil after an early error) so that a
    /// purification that follows a reject can reuse the fine-tunes.
    public func verifyKeepingEvidence(_ url: URL, reference: URL?, clean: [CleanSample], workDirectory: URL,
                                      log: @escaping (String) -> Void = { _ in }) -> (report: GateReport, evidence: VariantEvidence?) {
        let started = Date()
        var kept: VariantEvidence?
        do {
            let child = try SuspectLoader.read(url)
            let parent = try SuspectLoader.parent(of: child, file: url, reference: reference)
            try SuspectLoader.checkFinite(parent, file: reference?.path ?? "parent")
            let parentModel = try SuspectLoader.model(of: parent, source: reference?.path ?? "parent")
            let (loaded, _) = try SuspectLoader.load(child, from: url, base: parent, baseModel: parentModel)
            guard ChannelUpdates.sameBlocks(parent.config, loaded.model.config) else {
                throw VaccineError.shapeMismatch(file: url.path, reason: "its architecture differs from the parent's")
            }
            let update = try ChannelUpdates(loaded.model, minus: parentModel, modules: configuration.modules, file: url.path)
            // The variants, directions and calibrations render prompts in the template the
            // tokenizer's special tokens imply, whatever chat template the checkpoint carries:
            // the evidence and calibrations kept beside the aligned model were made so, before
            // fine-tunes kept their base's template, and a verdict must not depend on which.
            let tokenizer = try loaded.tokenizer.map { try Tokenizer(data: $0.jsonData(), source: $0.source) }
            let bundle = loaded.replacing(model: loaded.model, tokenizer: tokenizer)
            let parentBundle = ModelBundle(model: parentModel, tokenizer: tokenizer, checkpoint: parent, source: reference ?? url)
            let source = configuration.variantsFromParent ? parentBundle : bundle
            var evidence: VariantEvidence
            let cache = configuration.variantsFromParent && configuration.rule == .share ? configuration.evidenceCache : nil
            let key = try cache.map { _ in
                try GateEvidenceCache.key(parentSHA256: GateEvidenceCache.parentIdentity(weightsSHA256: parentBundle.weightsSHA256 ?? "", adapters: parent.adapters), settings: configuration.variants, clean: clean,
                                          modules: UnitModule.allCases)
            }
            let compute = { () throws -> VariantEvidence in
                let factory = try VariantFactory(suspect: source, clean: clean, settings: self.configuration.variants, workDirectory: workDirectory)
                factory.deadline = (started.addingTimeInterval(self.configuration.timeLimit), self.configuration.timeLimit)
                factory.log = log
                return try factory.evidence()
            }
            if let cache, let key {
                // Concurrent gates on children of this parent compute the key once (see GateEvidenceCache).
                let (found, cached) = try cache.evidence(
                    for: key, deadline: (started.addingTimeInterval(configuration.timeLimit), configuration.timeLimit), log: log, compute: compute)
                evidence = found
                if cached {
                    log("variants of the parent read from \(cache.url(key).path)")
                    evidence.seconds = 0
                }
            } else {
                evidence = try compute()
            }
            if configuration.modules != UnitModule.allCases {
                evidence = Self.restrict(evidence, to: update)
            }
            kept = evidence
            var report = try decide(update: update, evidence: evidence, checkpoint: url.path, reference: reference?.path, started: started)
            func checkTime(_ phase: String) throws {
                if Date() > started.addingTimeInterval(configuration.timeLimit) {
                    throw VaccineError.timeout(phase: phase, seconds: configuration.timeLimit)
                }
            }
            var direction: DirectionStage.Evidence?, behaviour: BehaviourStage.Evidence?
            if let stage = configuration.direction, let skipped = stage.skipReason(child: child, parent: parent) {
                log("direction stage: skipped: \(skipped)")
                report.directionSkipped = skipped
            } else if let stage = configuration.direction {
                direction = try stage.measure(child: bundle.model, parent: parentBundle, clean: clean, workDirectory: workDirectory, log: log)
                try checkTime("the direction stage")
            }
            if let stage = configuration.behaviour {
                behaviour = try stage.measure(child: bundle, parent: parentBundle, clean: clean, workDirectory: workDirectory, log: log)
                try checkTime("the behavioural scan")
            }
            report.conclude(direction: direction, behaviour: behaviour)
            report.timings.total = Date().timeIntervalSince(started)
            return (report, evidence)
        } catch {
            return (GateReport.failure(error, checkpoint: url.path, reference: reference?.path, seconds: Date().timeIntervalSince(started)), kept)
        }
    }

    /// Evidence cut down to the blocks `update` has (when the gate looks at fewer modules).
    static func restrict(_ e: VariantEvidence, to update: ChannelUpdates) -> VariantEvidence {
        let keys = update.blocks.map { "\($0.layer).\($0.module.rawValue)" }
        let all = e.statistics.blocks.map { "\($0.shape.layer).\($0.shape.module.rawValue)" }
        let keep = all.indices.filter { keys.contains(all[$0]) }
        var restricted = VariantEvidence(
            statistics: e.statistics.restricted(to: keep),
            cleanEnergies: e.cleanEnergies.map { en in keep.map { en[$0] } },
            backdooredEnergies: e.backdooredEnergies.map { en in keep.map { en[$0] } }, poisons: e.poisons, seconds: e.seconds)
        restricted.deltas = e.deltas.map { d in ChannelUpdates(blocks: keep.map { d.blocks[$0] }) }
        restricted.cleanUpdates = e.cleanUpdates.map { u in ChannelUpdates(blocks: keep.map { u.blocks[$0] }) }
        restricted.backdooredUpdates = e.backdooredUpdates.map { u in ChannelUpdates(blocks: keep.map { u.blocks[$0] }) }
        return restricted
    }
}
