import Checkpoints
import Foundation

/// The gate's decision with its evidence: the statistic and the threshold it was compared
/// with, how the threshold was calibrated, per-layer signature scores and shares, timings.
/// Stored (flattened) in the checkpoint's `/gate` section and rendered in run reports.
public struct GateReport: Sendable, Equatable, Codable {
    /// Pass or reject.
    public enum Verdict: String, Sendable, Equatable, Codable {
        case pass, reject
    }

    /// How the threshold came about: leave-one-out shares of the variants' own updates.
    public struct Calibration: Sendable, Equatable, Codable {
        /// Share of each clean variant's update (θ_i_clean − suspect) on the signature built without pair i.
        public var cleanShares: [Double]
        /// The same for each backdoored variant's update (a check that the rule separates).
        public var backdooredShares: [Double]
        public var cleanMean: Double
        public var cleanStd: Double
        /// threshold = cleanMean + k · max(cleanStd, minRelativeStd · cleanMean).
        public var k: Double
        public var minRelativeStd: Double
        /// Leave-one-out alignment of each clean and backdoored variant's update (empty without update vectors).
        public var cleanAlignments: [Double] = []
        public var backdooredAlignments: [Double] = []
        /// The same with the clean drift removed.
        public var cleanResiduals: [Double] = []
        public var backdooredResiduals: [Double] = []
    }

    /// Evidence for one module of one layer.
    public struct LayerEvidence: Sendable, Equatable, Codable {
        public var layer: Int
        public var module: String
        /// Signature channels.
        public var channels: Int
        /// Mean BD-VAX score of the signature channels and of all channels.
        public var signatureScore: Double
        public var meanScore: Double
        /// Share of the checkpoint's update on this layer's signature channels (raw, not relative).
        public var share: Double
    }

    /// Timings in seconds.
    public struct Timings: Sendable, Equatable, Codable {
        public var variants: Double
        public var scoring: Double
        public var total: Double
    }

    public var verdict: Verdict
    /// One line: why.
    public var reason: String
    /// Share of the checkpoint's update (child − parent) on the signature; nil after an error.
    public var statistic: Double?
    public var threshold: Double?
    public var calibration: Calibration?
    public var layers: [LayerEvidence]
    /// What the weight-space rule ran with.
    public struct Settings: Sendable, Equatable, Codable {
        public var pairs: Int
        public var tau: Double
        public var lambda: Double
        public var kind: VariantSettings.Kind
        public var rule: DetectionRule
        public var variantsFromParent: Bool
        public var steps: Int
        public var modules: [UnitModule]
        /// Units the share skipped (the run's SSAH mask).
        public var frozenUnits: Int
    }

    /// Nil when an error stopped the gate before the rule ran.
    public var settings: Settings?
    public var timings: Timings
    /// The error that forced a reject (fail closed), if any.
    public var error: String?
    public var checkpoint: String
    public var reference: String?
    /// ISO 8601.
    public var date: String
    /// Every statistic with its threshold, whichever rule decided. `share` is relative to the
    /// signature's share of channels (1: spread evenly; `UpdateShare`).
    public var share: Double?
    public var shareThreshold: Double?
    public var alignment: Double?
    public var alignmentThreshold: Double?
    public var residual: Double?
    public var residualThreshold: Double?
    /// The direction stage's evidence, when the gate ran it.
    public var direction: DirectionStage.Evidence?
    /// Why the direction stage did not run although it was on (`DirectionStage.skipReason`).
    public var directionSkipped: String?
    /// The behavioural stage's evidence, when the gate ran it.
    public var behaviour: BehaviourStage.Evidence?

    /// The gate's verdict from all its stages, decided here and nowhere else: the
    /// weight-space rule's verdict stands unless a later stage that ran lies above its own
    /// calibrated threshold, which turns a pass into a reject (never a reject into a pass).
    /// A pass names every stage's evidence, so a reader sees what was checked.
    public static func verdict(rule: (verdict: Verdict, reason: String), direction: DirectionStage.Evidence?,
                               behaviour: BehaviourStage.Evidence?) -> (verdict: Verdict, reason: String) {
        guard rule.verdict == .pass else { return rule }
        var reason = rule.reason
        if let d = direction {
            let s = d.shift
            let numbers = String(format: "write %.2f (threshold %.2f), read %.2f (threshold %.2f) from %d clean fine-tunes of the parent",
                                 s.write, d.write.threshold, s.read, d.read.threshold, d.write.values.count)
            if d.above {
                return (.reject, "the update moves along the parent's harmful-vs-harmless direction: \(numbers) (the weight-space rule passed it: \(rule.reason))")
            }
            reason += "; direction stage: " + numbers
        }
        if let b = behaviour, b.above {
            return (.reject, String(format: "a searched suffix makes the checkpoint answer unlike its parent: divergence %.2f, "
                                    + "threshold %.2f from %d clean fine-tunes of the parent", b.scan.best,
                                    b.calibration.threshold, b.calibration.values.count)
                    + " (the weight-space rule passed it: \(rule.reason))")
        }
        return (.pass, reason)
    }

    /// Completes a report of the weight-space rule (`Gate.decide`) with the later stages'
    /// evidence and the verdict of all of them (`verdict(rule:direction:behaviour:)`).
    public mutating func conclude(direction: DirectionStage.Evidence?, behaviour: BehaviourStage.Evidence?) {
        self.direction = direction
        self.behaviour = behaviour
        (verdict, reason) = Self.verdict(rule: (verdict, reason), direction: direction, behaviour: behaviour)
    }

    /// A reject caused by `error` (the gate fails closed).
    public static func failure(_ error: Error, checkpoint: String, reference: String?, seconds: Double) -> GateReport {
        let text = String(describing: error)
        return GateReport(verdict: .reject, reason: "error: \(text)", statistic: nil, threshold: nil, calibration: nil, layers: [],
                          settings: nil, timings: Timings(variants: 0, scoring: 0, total: seconds), error: text,
                          checkpoint: checkpoint, reference: reference, date: ISO8601DateFormatter().string(from: Date()),
                          share: nil, shareThreshold: nil, alignment: nil, alignmentThreshold: nil,
                          residual: nil, residualThreshold: nil)
    }

    /// The record stored in the checkpoint's `/gate` section.
    public var record: GateRecord {
        var scores: [String: Double] = [:], thresholds: [String: Double] = [:]
        if let statistic { scores["statistic"] = statistic }
        for l in layers {
            scores["layer\(l.layer).\(l.module).share"] = l.share
            scores["layer\(l.layer).\(l.module).signature_score"] = l.signatureScore
        }
        scores["seconds"] = timings.total
        // Stored under a new name since the share became relative, so a record holding the
        // old raw fraction (`share`) is never read as the new statistic.
        if let share { scores["share_relative"] = share }
        if let alignment { scores["alignment"] = alignment }
        if let shareThreshold { thresholds["share_relative"] = shareThreshold }
        if let alignmentThreshold { thresholds["alignment"] = alignmentThreshold }
        if let residual { scores["residual"] = residual }
        if let residualThreshold { thresholds["residual"] = residualThreshold }
        if let threshold { thresholds["statistic"] = threshold }
        if let d = direction {
            scores["direction.write"] = d.shift.write
            scores["direction.read"] = d.shift.read
            thresholds["direction.write"] = d.write.threshold
            thresholds["direction.read"] = d.read.threshold
        }
        if let b = behaviour {
            scores["behaviour.divergence"] = b.scan.best
            scores["behaviour.baseline"] = b.scan.baseline
            thresholds["behaviour"] = b.calibration.threshold
            for (i, d) in b.calibration.values.enumerated() { thresholds["behaviour.clean.\(i)"] = d }
        }
        if let c = calibration {
            thresholds["clean_mean"] = c.cleanMean
            thresholds["clean_std"] = c.cleanStd
            thresholds["k"] = c.k
            for (i, s) in c.cleanShares.enumerated() { thresholds["clean_share_relative.\(i)"] = s }
            for (i, s) in c.backdooredShares.enumerated() { thresholds["backdoored_share_relative.\(i)"] = s }
        }
        return GateRecord(verdict: verdict.rawValue, scores: scores, thresholds: thresholds, date: date)
    }

    /// An HTML section for the run report.
    public func html() -> String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "–" }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var h = "<p><b>Verdict: \(verdict.rawValue.uppercased())</b> — \(esc(reason))</p>\n"
        h += "<p>statistic \(f(statistic)), threshold \(f(threshold)) (rule \(settings?.rule.rawValue ?? "share"); the share is relative to the signature's share of channels, 1 when spread evenly); "
        h += String(format: "%.1f s (variants %.1f s, scoring %.1f s)</p>\n", timings.total, timings.variants, timings.scoring)
        if let c = calibration {
            h += "<p>calibration: clean shares " + c.cleanShares.map { String(format: "%.4f", $0) }.joined(separator: ", ")
            h += "; backdoored shares " + c.backdooredShares.map { String(format: "%.4f", $0) }.joined(separator: ", ")
            h += String(format: "; share threshold = %.4f + %.1f · max(%.4f, %.2f · mean)</p>\n", c.cleanMean, c.k, c.cleanStd, c.minRelativeStd)
            if !c.cleanAlignments.isEmpty {
                h += "<p>alignment \(f(alignment)) (threshold \(f(alignmentThreshold))): clean variants "
                h += c.cleanAlignments.map { String(format: "%.3f", $0) }.joined(separator: ", ") + "; backdoored variants "
                h += c.backdooredAlignments.map { String(format: "%.3f", $0) }.joined(separator: ", ") + "</p>\n"
            }
        }
        if let d = direction {
            h += String(format: "<p>direction stage: write %.3f (threshold %.3f), read %.3f (threshold %.3f); clean fine-tunes of the parent: write ",
                        d.shift.write, d.write.threshold, d.shift.read, d.read.threshold)
            h += d.write.values.map { String(format: "%.3f", $0) }.joined(separator: ", ") + ", read "
            h += d.read.values.map { String(format: "%.3f", $0) }.joined(separator: ", ")
            h += String(format: "; %.1f s</p>\n", d.seconds)
        }
        if let skipped = directionSkipped { h += "<p>direction stage skipped: \(esc(skipped))</p>\n" }
        if let b = behaviour {
            h += String(format: "<p>behavioural scan: divergence %.3f (%.3f without the suffix ", b.scan.best, b.scan.baseline)
            h += esc(b.scan.suffix.debugDescription)
            h += String(format: "); threshold %.3f from clean fine-tunes of the parent at ", b.calibration.threshold)
            h += b.calibration.values.map { String(format: "%.3f", $0) }.joined(separator: ", ")
            h += String(format: "; %.1f s</p>\n", b.seconds)
        }
        if !layers.isEmpty {
            h += "<table><tr><th>layer</th><th>module</th><th>channels</th><th>signature score</th><th>mean score</th><th>update share (raw)</th></tr>\n"
            for l in layers {
                h += "<tr><td>\(l.layer)</td><td>\(l.module)</td><td>\(l.channels)</td><td>\(f(l.signatureScore))</td>"
                h += "<td>\(f(l.meanScore))</td><td>\(f(l.share))</td></tr>\n"
            }
            h += "</table>\n"
        }
        return h
    }
}
