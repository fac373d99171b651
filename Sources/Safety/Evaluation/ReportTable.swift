import Foundation

/// Renders an `EvaluationReport` as a plain-text table for the terminal.
public enum ReportTable {
    /// The report as aligned rows: utility and refusal numbers, then one row per attack
    /// with its ASR unguarded and guarded side by side.
    public static func render(_ report: EvaluationReport) -> String {
        var rows: [[String]] = [["metric", "count", "rate"]]
        func add(_ name: String, _ rate: Rate?) {
            guard let rate else { return }
            rows.append([name, "\(rate.hits)/\(rate.count)", percent(rate.value)])
        }
        add("harmful refused (direct)", report.harmfulRefusal)
        add("over-refusal (harmless)", report.overRefusal)
        add("over-refusal, guarded", report.overRefusalGuarded)
        add("skill accuracy", report.skillAccuracy)
        for task in report.skillAccuracyByTask.keys.sorted() { add("  skill \(task)", report.skillAccuracyByTask[task]) }
        var out = table(rows)
        let names = orderedAttacks(report.attacks)
        if !names.isEmpty {
            var attackRows: [[String]] = [["attack", "ASR", "ASR guarded"]]
            for name in names {
                func cell(_ guarded: Bool) -> String {
                    guard let r = report.attackSuccess(name, guarded: guarded) else { return "-" }
                    return "\(percent(r.value)) (\(r.hits)/\(r.count))"
                }
                attackRows.append([name, cell(false), cell(true)])
            }
            out += "\n" + table(attackRows)
        }
        if let g = report.guardOverhead {
            out += String(format: "\nguard cost per token: %.3f ms guarded, %.3f ms with its checks off (%+.1f%%), %.3f ms plain generator (%+.1f%%); %.3f checks/token; %d prompts × %d tokens\n",
                          1000 * g.guardedSecondsPerToken, 1000 * g.checksOffSecondsPerToken, 100 * g.checksOverhead,
                          1000 * g.unguardedSecondsPerToken, 100 * g.overhead, g.probesPerToken, g.prompts, g.tokens)
        }
        if let t = report.guardThreshold {
            out += String(format: "\nguard threshold %g (%@)", t, report.guardThresholdCalibrated == true ? "calibrated for this head" : "not calibrated")
            if let mismatch = report.guardSettingsMismatch { out += "; note: " + mismatch }
        }
        out += String(format: "\n%d tokens per answer, %.1f s\n", report.maxTokens, report.seconds)
        return out
    }

    private static func orderedAttacks(_ attacks: [AttackOutcome]) -> [String] {
        var seen: [String] = []
        for a in attacks where !seen.contains(a.attack) { seen.append(a.attack) }
        return seen
    }

    private static func percent(_ x: Double) -> String { String(format: "%.1f%%", 100 * x) }

    private static func table(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for (r, row) in rows.enumerated() {
            let cells = row.enumerated().map { i, cell in
                i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - cell.count) + cell
            }
            out += cells.joined(separator: "  ") + "\n"
            if r == 0 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        return out
    }
}
