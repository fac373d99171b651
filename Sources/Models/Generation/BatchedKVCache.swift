import Engine

/// Keys and values of `batch` sequences decoded side by side, each in its own slot.
///
/// Buffers: per layer `keys` and `values` `[batch, maxLength, width]`. Slot b is also a
/// batch-1 `KVCache` (`slots[b]`, a view of the same memory) for what one sequence does
/// alone: its prompt's prefill, a forced prefix, a rollback. A batched step feeds one token
/// to each of the slots chosen with `feed(_:)`: the projections run as one matrix product
/// over those rows, and each row's attention reads its own slot (`keyBatch`) under the
/// step's mask (`stepMask`), since slots hold different lengths.
public final class BatchedKVCache: KeyValueStore {
    /// Per slot, a batch-1 cache over that slot's rows.
    public let slots: [KVCache]
    /// Rows each slot can hold.
    public let maxLength: Int
    /// `kvHeads · headDim`.
    public let width: Int
    private let keys: [Tensor], values: [Tensor]
    /// The slots the next batched forward feeds, in its batch order.
    public private(set) var fed: [Int] = []

    /// A cache for `batch` sequences of up to `maxLength` positions each.
    public init(config: ModelConfig, batch: Int, maxLength: Int) {
        precondition(batch > 0 && maxLength > 0, "BatchedKVCache: empty")
        self.maxLength = maxLength
        let width = config.numKVHeads * config.headDim
        self.width = width
        keys = (0..<config.numLayers).map { _ in Tensor(zeros: [batch, maxLength, width]) }
        values = (0..<config.numLayers).map { _ in Tensor(zeros: [batch, maxLength, width]) }
        let (k, v) = (keys, values)
        slots = (0..<batch).map { b in
            let view = { (t: Tensor) in Tensor(shape: [maxLength, width], storage: t.storage, offset: t.offset + b * maxLength * width) }
            return KVCache(keys: k.map(view), values: v.map(view), maxLength: maxLength, width: width)
        }
    }

    /// Chooses the slots the next forward feeds (one token each), in its batch order.
    public func feed(_ slots: [Int]) {
        precondition(slots.allSatisfy { self.slots.indices.contains($0) } && Set(slots).count == slots.count,
                     "BatchedKVCache: slots \(slots) out of 0..<\(self.slots.count) or repeated")
        fed = slots
    }

    public var positions: [Int] { fed.map { slots[$0].length } }

    /// The mask of a step that feeds one token to each slot of `fed`: row r reads the keys
    /// `allowed(r, j)` permits among its slot's stored positions and always its own new one.
    public func stepMask(_ allowed: (Int, Int) -> Bool = { _, _ in true }) -> AttentionMask {
        let lengths = positions
        return AttentionMask(batch: fed.count, queries: 1, keys: maxLength) { r, _, j in
            j == lengths[r] || (j < lengths[r] && allowed(r, j))
        }
    }

    public func store(layer: Int, keys newKeys: Tensor, values newValues: Tensor) -> (keys: Tensor, values: Tensor, keyBatch: [Int]?) {
        precondition(newKeys.shape == [fed.count, 1, width] && newValues.shape == newKeys.shape,
                     "BatchedKVCache: new keys \(newKeys.shape) for \(fed.count) fed slots of width \(width)")
        for (row, slot) in fed.enumerated() {
            let at = slots[slot].length
            precondition(at < maxLength, "BatchedKVCache: slot \(slot) is full (\(maxLength) positions)")
            (slots[slot].keys[layer].data + at * width).update(from: newKeys.data + row * width, count: width)
            (slots[slot].values[layer].data + at * width).update(from: newValues.data + row * width, count: width)
        }
        let shape = [slots.count, maxLength, width]
        return (Tensor(shape: shape, storage: keys[layer].storage, offset: keys[layer].offset),
                Tensor(shape: shape, storage: values[layer].storage, offset: values[layer].offset), fed)
    }

    public func advance(by count: Int) {
        for slot in fed { slots[slot].advance(by: count) }
    }
}
