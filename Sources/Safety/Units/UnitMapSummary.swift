import Foundation

extension UnitMap {
    /// A fixed-width summary: units per class for MLP neurons and heads (with shares),
    /// then one line per layer with its class counts.
    public var summaryTable: String {
        func pct(_ n: Int, _ total: Int) -> String { total == 0 ? "-" : String(format: "%.1f%%", 100 * Double(n) / Double(total)) }
        func right(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        func left(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        let (nm, na) = (unitCount(.mlp), unitCount(.attn))
        let (cm, ca) = (classCounts(.mlp), classCounts(.attn))
        var out = "class   mlp neurons          heads\n"
        for c in [UnitClass.scu, .ucu, .ru, .cu] {
            let m = cm[c] ?? 0, a = ca[c] ?? 0
            out += left(c.description, 6) + right(String(m), 8) + right(pct(m, nm), 8)
            out += right(String(a), 9) + right(pct(a, na), 8) + "\n"
        }
        out += left("total", 6) + right(String(nm), 8) + right("", 8) + right(String(na), 9) + "\n"
        out += "sizes: \(sizes), normalisation: \(Self.normalisationName)\n"
        out += "layer  mlp SCU/UCU/RU/CU       heads SCU/UCU/RU/CU\n"
        for l in 0..<layerCount {
            func counts(_ e: Entry) -> String {
                [UnitClass.scu, .ucu, .ru, .cu].map { c in String(e.classes.count { $0 == c }) }.joined(separator: "/")
            }
            out += right(String(l), 5) + "  " + left(counts(mlp[l]), 24) + counts(attn[l]) + "\n"
        }
        return out
    }

    /// JSON-ready form: sizes, class counts per kind, and per-layer class counts.
    public var jsonObject: [String: Any] {
        func counts(_ d: [UnitClass: Int]) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: UnitClass.allCases.map { ($0.description, d[$0] ?? 0) })
        }
        func entryCounts(_ e: Entry) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: UnitClass.allCases.map { c in (c.description, e.classes.count { $0 == c }) })
        }
        return [
            "sizes": ["scu": sizes.scu, "ucu": sizes.ucu, "ru": sizes.ru],
            "normalisation": Self.normalisationName,
            "mlp": counts(classCounts(.mlp)), "attn": counts(classCounts(.attn)),
            "layers": (0..<layerCount).map { l in ["layer": l, "mlp": entryCounts(mlp[l]), "attn": entryCounts(attn[l])] as [String: Any] },
        ]
    }
}
