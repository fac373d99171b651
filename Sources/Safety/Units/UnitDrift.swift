import Foundation

/// How unit classes moved between a parent's map and a child's (for example across a
/// fine-tune): `counts[from][to]` over the four classes, in checkpoint code order
/// (RU, UCU, CU, SCU), in total and per module kind.
public struct UnitDrift: Sendable, Equatable {
    /// `[4][4]` transitions over both module kinds: row = parent class, column = child class.
    public let counts: [[Int]]
    /// Transitions of MLP neurons only.
    public let mlp: [[Int]]
    /// Transitions of attention heads only.
    public let attn: [[Int]]

    /// Compares two maps of the same architecture unit by unit.
    public init(parent: UnitMap, child: UnitMap) throws(UnitMapError) {
        guard parent.layerCount == child.layerCount else {
            throw .incompatible(reason: "parent has \(parent.layerCount) layers, child \(child.layerCount)")
        }
        func matrix(_ module: UnitModule) throws(UnitMapError) -> [[Int]] {
            var m = [[Int]](repeating: [Int](repeating: 0, count: 4), count: 4)
            for layer in 0..<parent.layerCount {
                let p = parent[layer, module], c = child[layer, module]
                guard p.count == c.count else {
                    throw .incompatible(reason: "layer \(layer) \(module.rawValue): parent has \(p.count) units, child \(c.count)")
                }
                for j in 0..<p.count { m[Int(p.classes[j].rawValue)][Int(c.classes[j].rawValue)] += 1 }
            }
            return m
        }
        let (m, a) = (try matrix(.mlp), try matrix(.attn))
        mlp = m
        attn = a
        counts = (0..<4).map { r in (0..<4).map { c in m[r][c] + a[r][c] } }
    }

    /// Units that were `from` in the parent and are `to` in the child.
    public func count(from: UnitClass, to: UnitClass, module: UnitModule? = nil) -> Int {
        matrix(module)[Int(from.rawValue)][Int(to.rawValue)]
    }

    /// Share of the parent's `from` units that are `to` in the child (0 when the parent has none).
    public func fraction(from: UnitClass, to: UnitClass, module: UnitModule? = nil) -> Double {
        let row = matrix(module)[Int(from.rawValue)]
        let total = row.reduce(0, +)
        return total == 0 ? 0 : Double(row[Int(to.rawValue)]) / Double(total)
    }

    /// Units whose class changed.
    public var changed: Int { (0..<4).reduce(0) { acc, r in acc + counts[r].reduce(0, +) - counts[r][r] } }

    private func matrix(_ module: UnitModule?) -> [[Int]] {
        switch module {
        case nil: return counts
        case .mlp?: return mlp
        case .attn?: return attn
        }
    }

    /// A fixed-width table: parent classes down, child classes across, then the headline
    /// the paper reports (the share of SCUs that turned into CU).
    public var table: String {
        let names = UnitClass.allCases.map(\.description)
        var out = "parent \\ child" + names.map { pad($0, 9) }.joined() + pad("total", 9) + "\n"
        for (r, name) in names.enumerated() {
            out += pad(name, 14, left: true) + counts[r].map { pad(String($0), 9) }.joined()
            out += pad(String(counts[r].reduce(0, +)), 9) + "\n"
        }
        return out + headline + "\n"
    }

    /// The paper's headline (the share of SCUs that turned into CU) and how many units
    /// changed class, on one line.
    public var headline: String {
        let scu = counts[3].reduce(0, +)
        let pct = scu == 0 ? "-" : String(format: "%.1f %%", 100 * fraction(from: .scu, to: .cu))
        return "SCU -> CU: \(counts[3][2]) of \(scu) (\(pct)); units that changed class: \(changed)"
    }

    /// JSON-ready form: the three matrices and the class order.
    public var jsonObject: [String: Any] {
        ["classes": UnitClass.allCases.map(\.description), "counts": counts, "mlp": mlp, "attn": attn,
         "changed": changed, "scu_to_cu_fraction": fraction(from: .scu, to: .cu)]
    }

    private func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return left ? s + fill : fill + s
    }
}
