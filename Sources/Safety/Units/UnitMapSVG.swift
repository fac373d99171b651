import Foundation

/// A per-layer picture of a unit map as a self-contained SVG document: one row per layer,
/// on the left a stacked bar of the MLP neurons' class fractions, on the right one square
/// per attention head coloured by its class, and a legend. Used in run reports and written
/// next to a checkpoint by `safetune units -o`.
public enum UnitMapSVG {
    /// Class colours: RU grey, UCU blue, CU sand, SCU red.
    public static let colours: [UnitClass: String] = [.ru: "#b0b0b0", .ucu: "#4477aa", .cu: "#e8d8a8", .scu: "#cc3311"]

    /// The SVG text for `map`, titled `title`.
    public static func render(_ map: UnitMap, title: String = "SSAH unit map") -> String {
        let rowHeight = 14, gap = 4, labelWidth = 44, barWidth = 360, headSize = 12
        let maxHeads = map.attn.map(\.count).max() ?? 0
        let headsX = labelWidth + barWidth + 24
        let width = headsX + max(1, maxHeads) * (headSize + 2) + 16
        let top = 44
        let height = top + map.layerCount * (rowHeight + gap) + 40
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
        s += "viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<title>\(escape(title))</title>\n"
        s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
        s += "<text x=\"8\" y=\"16\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        s += "<text x=\"\(labelWidth)\" y=\"36\">MLP neurons (class fractions)</text>\n"
        s += "<text x=\"\(headsX)\" y=\"36\">attention heads</text>\n"
        for layer in 0..<map.layerCount {
            let y = top + layer * (rowHeight + gap)
            s += "<text x=\"8\" y=\"\(y + rowHeight - 3)\">L\(layer)</text>\n"
            let mlp = map.mlp[layer]
            var x = Double(labelWidth)
            for c in UnitClass.allCases {
                let n = mlp.classes.count { $0 == c }
                guard n > 0, mlp.count > 0 else { continue }
                let w = Double(barWidth) * Double(n) / Double(mlp.count)
                s += "<rect x=\"\(fmt(x))\" y=\"\(y)\" width=\"\(fmt(w))\" height=\"\(rowHeight)\" fill=\"\(colours[c] ?? "black")\">"
                s += "<title>layer \(layer) MLP: \(n) \(c)</title></rect>\n"
                x += w
            }
            for (h, c) in map.attn[layer].classes.enumerated() {
                let hx = headsX + h * (headSize + 2)
                s += "<rect x=\"\(hx)\" y=\"\(y + 1)\" width=\"\(headSize)\" height=\"\(headSize)\" fill=\"\(colours[c] ?? "black")\">"
                s += "<title>layer \(layer) head \(h): \(c)</title></rect>\n"
            }
        }
        let legendY = top + map.layerCount * (rowHeight + gap) + 16
        for (i, c) in UnitClass.allCases.reversed().enumerated() {
            let lx = labelWidth + i * 90
            s += "<rect x=\"\(lx)\" y=\"\(legendY - 10)\" width=\"12\" height=\"12\" fill=\"\(colours[c] ?? "black")\"/>"
            s += "<text x=\"\(lx + 16)\" y=\"\(legendY)\">\(c) \(map.classCounts()[c] ?? 0)</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    private static func fmt(_ v: Double) -> String { String(format: "%.2f", v) }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
