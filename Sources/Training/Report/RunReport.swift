import Foundation

/// `report.html`: a self-contained page (inline SVG, no scripts, no external files) with a
/// run's summary, its loss curves, and sections the safety methods add (their tables and
/// pictures).
public struct RunReport {
    /// One titled block of trusted HTML produced by SafeTune itself.
    public struct Section {
        public var title: String
        public var html: String
        public init(title: String, html: String) {
            self.title = title
            self.html = html
        }
    }

    public var title: String
    /// Key–value rows of the summary table, in order.
    public var summary: [(String, String)] = []
    /// (step, training loss) points.
    public var trainLoss: [(Int, Double)] = []
    /// (step, evaluation loss) points.
    public var evalLoss: [(Int, Double)] = []
    public var sections: [Section] = []

    public init(title: String) { self.title = title }

    /// Reads the training and evaluation losses from a run's `metrics.jsonl`.
    public mutating func loadMetrics(from url: URL) {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = object["step"] as? Int else { continue }
            if object["kind"] as? String == "eval" {
                if let v = object["eval_loss"] as? Double { evalLoss.append((step, v)) }
            } else if let v = object["loss"] as? Double {
                trainLoss.append((step, v))
            }
        }
    }

    /// The page.
    public func html() -> String {
        var out = """
        <!DOCTYPE html><html><head><meta charset="utf-8"><title>\(Self.escape(title))</title><style>
        body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}
        table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}
        h2{margin-top:1.6em}.legend span{margin-right:1.5em}
        </style></head><body><h1>\(Self.escape(title))</h1>
        """
        out += "<table>" + summary.map { "<tr><th>\(Self.escape($0.0))</th><td>\(Self.escape($0.1))</td></tr>" }.joined() + "</table>"
        if !trainLoss.isEmpty {
            out += "<h2>Loss</h2>" + Self.lineChart([("training", "#1f77b4", trainLoss), ("evaluation", "#d62728", evalLoss)])
        }
        for s in sections { out += "<h2>\(Self.escape(s.title))</h2>\(s.html)" }
        return out + "</body></html>\n"
    }

    /// Writes the page atomically.
    public func write(to url: URL) throws {
        try Data(html().utf8).write(to: url, options: .atomic)
    }

    /// An SVG line chart of several series over a shared step axis.
    public static func lineChart(_ series: [(name: String, color: String, points: [(Int, Double)])],
                                 width: Double = 720, height: Double = 280) -> String {
        let all = series.flatMap(\.points).filter { $0.1.isFinite }
        guard let minX = all.map(\.0).min(), let maxX = all.map(\.0).max(),
              let minY = all.map(\.1).min(), let maxY = all.map(\.1).max() else { return "" }
        let left = 56.0, bottom = 28.0, top = 10.0, right = 10.0
        let spanX = Double(max(maxX - minX, 1)), spanY = max(maxY - minY, 1e-9)
        func x(_ v: Int) -> Double { left + Double(v - minX) / spanX * (width - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (v - minY) / spanY) * (height - top - bottom) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-size=\"11\">"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"none\" stroke=\"#999\"/>"
        for i in 0...4 {
            let v = minY + spanY * Double(i) / 4
            svg += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.3g", v))</text>"
        }
        svg += "<text x=\"\(left)\" y=\"\(height - 8)\">step \(minX)</text>"
        svg += "<text x=\"\(width - right)\" y=\"\(height - 8)\" text-anchor=\"end\">\(maxX)</text>"
        for s in series where !s.points.isEmpty {
            let path = s.points.filter { $0.1.isFinite }.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.5\" points=\"\(path)\"/>"
        }
        svg += "</svg>"
        let legend = series.filter { !$0.points.isEmpty }
            .map { "<span style=\"color:\($0.color)\">■ \(escape($0.name))</span>" }.joined()
        return svg + "<div class=\"legend\">\(legend)</div>"
    }

    /// Escapes text for HTML.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
