import Engine
import Models

/// LoRA adapters in a checkpoint's `/adapters` section: one group per module path with
/// tensors `A` `[rank, in]` and `B` `[out, rank]` and attributes `rank`, `alpha`, `target`
/// (the layout `PEFTExport` reads).
public enum LoRAGroup {
    /// The adapters attached to `model`, as a checkpoint section.
    public static func make(_ adapters: [(String, LoRAAdapter)]) -> TensorGroup {
        var groups: [String: TensorGroup] = [:]
        for (path, adapter) in adapters {
            groups[path] = TensorGroup(
                tensors: ["A": adapter.a.value.copy(), "B": adapter.b.value.copy()],
                attributes: ["rank": .int(Int64(adapter.rank)), "alpha": .double(Double(adapter.alpha)),
                             "target": .string(String(path.split(separator: ".").last ?? ""))])
        }
        return TensorGroup(attributes: ["kind": .string("lora")], groups: groups)
    }

    /// Attaches the section's adapters to `model` (weights copied in) and returns them.
    @discardableResult
    public static func attach(_ group: TensorGroup, to model: TransformerModel, source: String) throws(CheckpointError) -> [(String, LoRAAdapter)] {
        let linears = Dictionary(model.namedLinears, uniquingKeysWith: { a, _ in a })
        var out: [(String, LoRAAdapter)] = []
        for (path, g) in group.groups.sorted(by: { $0.key < $1.key }) {
            let object = "/adapters/\(path)"
            guard let linear = linears[path] else { throw .unexpectedDataset(file: source, dataset: object) }
            guard let a = g.tensors["A"] else { throw .missingDataset(file: source, dataset: object + "/A") }
            guard let b = g.tensors["B"] else { throw .missingDataset(file: source, dataset: object + "/B") }
            guard let alpha = g.attributes["alpha"]?.doubleValue else {
                throw .missingAttribute(file: source, object: object, attribute: "alpha")
            }
            let rank = a.shape.first ?? 0
            guard a.shape == [rank, linear.inFeatures], rank > 0 else {
                throw .shapeMismatch(file: source, dataset: object + "/A", expected: [rank, linear.inFeatures], found: a.shape)
            }
            guard b.shape == [linear.outFeatures, rank] else {
                throw .shapeMismatch(file: source, dataset: object + "/B", expected: [linear.outFeatures, rank], found: b.shape)
            }
            let adapter = LoRAAdapter(a: a.copy(), b: b.copy(), alpha: Float(alpha))
            adapter.a.name = "\(path).lora_A.weight"
            adapter.b.name = "\(path).lora_B.weight"
            linear.adapter = adapter
            out.append((path, adapter))
        }
        return out
    }
}
