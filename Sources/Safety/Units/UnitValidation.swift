import Foundation
import Models

/// The pruning experiment that validates a unit map (the paper's proof of the map): the
/// model is evaluated as it is, then with each class pruned in turn (`UnitPruner`, on a
/// copy), and the changes in attack success rate and utility are reported. A sound map
/// shows a large ASR rise and a small utility drop for SCU, and small changes for RU.
public struct UnitValidation: Sendable {
    /// What one evaluation measured.
    public struct Outcome: Sendable, Equatable {
        /// Attack success rate on harmful prompts, 0…1 (higher is less safe).
        public var asr: Double
        /// Utility (skill accuracy), 0…1.
        public var utility: Double

        /// An outcome.
        public init(asr: Double, utility: Double) {
            self.asr = asr
            self.utility = utility
        }
    }

    /// The model with one class pruned.
    public struct Row: Sendable, Equatable {
        /// The class pruned.
        public var pruned: UnitClass
        /// MLP neurons zeroed.
        public var mlpUnits: Int
        /// Heads zeroed.
        public var attnUnits: Int
        /// The pruned model's scores.
        public var outcome: Outcome
    }

    /// The unpruned model's scores.
    public let baseline: Outcome
    /// One row per pruned class, in the order requested.
    public let rows: [Row]

    /// Runs `evaluate` on `model`, then on a pruned copy for each of `classes`.
    public init(model: TransformerModel, map: UnitMap, classes: [UnitClass] = [.scu, .ucu, .ru, .cu],
                evaluate: (TransformerModel) throws -> Outcome) throws {
        baseline = try evaluate(model)
        var rows: [Row] = []
        for c in classes {
            let (pruned, units) = try UnitPruner.pruned([c], of: map, from: model)
            rows.append(Row(pruned: c, mlpUnits: units[.mlp] ?? 0, attnUnits: units[.attn] ?? 0, outcome: try evaluate(pruned)))
        }
        self.rows = rows
    }

    /// Change in ASR (pruned − baseline) of a row, in fraction points.
    public func asrChange(_ row: Row) -> Double { row.outcome.asr - baseline.asr }
    /// Change in utility (pruned − baseline) of a row, in fraction points.
    public func utilityChange(_ row: Row) -> Double { row.outcome.utility - baseline.utility }

    /// A fixed-width table: class, units pruned, ASR and utility after pruning and their changes
    /// (in percentage points).
    public var table: String {
        func pct(_ v: Double) -> String { String(format: "%.1f%%", 100 * v) }
        func signed(_ v: Double) -> String { String(format: "%+.1f", 100 * v) }
        func right(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        func left(_ s: String) -> String { s + String(repeating: " ", count: max(0, 6 - s.count)) }
        var out = left("pruned") + right("neurons", 9) + right("heads", 7) + right("ASR", 9) + right("change", 9)
        out += right("utility", 9) + right("change", 9) + "\n"
        out += left("none") + right("0", 9) + right("0", 7) + right(pct(baseline.asr), 9) + right("", 9)
        out += right(pct(baseline.utility), 9) + "\n"
        for r in rows {
            out += left(r.pruned.description) + right(String(r.mlpUnits), 9) + right(String(r.attnUnits), 7)
            out += right(pct(r.outcome.asr), 9) + right(signed(asrChange(r)), 9)
            out += right(pct(r.outcome.utility), 9) + right(signed(utilityChange(r)), 9) + "\n"
        }
        return out
    }

    /// JSON-ready form.
    public var jsonObject: [String: Any] {
        ["baseline": ["asr": baseline.asr, "utility": baseline.utility],
         "rows": rows.map { r in
             ["class": r.pruned.description, "mlp_units": r.mlpUnits, "attn_units": r.attnUnits,
              "asr": r.outcome.asr, "utility": r.outcome.utility,
              "asr_change": asrChange(r), "utility_change": utilityChange(r)] as [String: Any]
         }]
    }
}
