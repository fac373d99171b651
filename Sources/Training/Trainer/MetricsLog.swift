import Foundation

/// `metrics.jsonl`: one JSON object per step or evaluation, appended and flushed as the run
/// goes, so a crash loses at most the current line.
final class MetricsLog {
    private let handle: FileHandle

    /// Opens `url`; lines of steps after `keepingStepsUpTo` (left by an interrupted run that
    /// is now resumed) are dropped, so the log reads as one uninterrupted run.
    init(url: URL, keepingStepsUpTo step: Int) throws {
        var kept = Data()
        if step > 0, let old = try? String(contentsOf: url, encoding: .utf8) {
            for line in old.split(separator: "\n") {
                guard let data = line.data(using: .utf8),
                      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let s = object["step"] as? Int, s <= step else { continue }
                kept.append(data)
                kept.append(0x0A)
            }
        }
        try kept.write(to: url)
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    func append(_ report: StepReport) throws {
        var object: [String: Any] = [
            "step": report.step, "loss": report.loss, "lr": report.learningRate, "grad_norm": report.gradNorm,
            "tokens": report.tokens, "tokens_per_s": report.tokensPerSecond, "elapsed_s": report.elapsedSeconds,
        ]
        for (k, v) in report.metrics { object[k] = v }
        try write(object)
    }

    func append(step: Int, metrics: [String: Double]) throws {
        var object: [String: Any] = ["step": step, "kind": "eval"]
        for (k, v) in metrics { object[k] = v }
        try write(object)
    }

    private func write(_ object: [String: Any]) throws {
        var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        data.append(0x0A)
        try handle.write(contentsOf: data)
    }
}
