import Engine

/// Where attention layers keep the keys and values of earlier positions while decoding:
/// one sequence (`KVCache`) or several side by side (`BatchedKVCache`).
public protocol KeyValueStore: AnyObject {
    /// Positions already stored for each sequence the next forward feeds, in its batch order.
    var positions: [Int] { get }
    /// Writes `keys`/`values` (`[B, T, width]`, the sequences the forward feeds) after the
    /// positions stored and returns what attention reads: keys and values of every stored
    /// position, and which of their sequences each fed sequence reads (nil: the same index).
    func store(layer: Int, keys: Tensor, values: Tensor) -> (keys: Tensor, values: Tensor, keyBatch: [Int]?)
    /// Marks `count` more positions as stored for every fed sequence (after all layers).
    func advance(by count: Int)
}

/// Keys and values of every layer for one sequence (batch 1), preallocated so decoding
/// one token costs one row write per layer instead of recomputing the prefix.
///
/// Buffers: per layer `keys` and `values` `[maxLength, kvHeads · headDim]`, rows
/// `0..<length` valid. Keys are stored after rotary embedding, so a cached row never
/// changes. `truncate(to:)` rolls the sequence back (SA-ESS rewinds to a checkpoint and
/// forces a prefix there).
public final class KVCache: KeyValueStore {
    /// Per layer `[maxLength, width]`.
    public let keys: [Tensor]
    /// Per layer `[maxLength, width]`.
    public let values: [Tensor]
    /// Rows each layer can hold.
    public let maxLength: Int
    /// `kvHeads · headDim`.
    public let width: Int
    /// Number of positions stored.
    public private(set) var length = 0

    /// A cache for `config`'s layers holding up to `maxLength` positions.
    public convenience init(config: ModelConfig, maxLength: Int) {
        let width = config.numKVHeads * config.headDim
        self.init(keys: (0..<config.numLayers).map { _ in Tensor(zeros: [maxLength, width]) },
                  values: (0..<config.numLayers).map { _ in Tensor(zeros: [maxLength, width]) }, maxLength: maxLength, width: width)
    }

    /// A cache over existing buffers (`[maxLength, width]` per layer; views into a batched cache).
    init(keys: [Tensor], values: [Tensor], maxLength: Int, width: Int) {
        self.keys = keys
        self.values = values
        self.maxLength = maxLength
        self.width = width
    }

    /// Positions still free.
    public var remaining: Int { maxLength - length }

    public var positions: [Int] { [length] }

    /// Writes `newKeys`/`newValues` (`[1, T, width]`) at rows `length..<length+T` of `layer`
    /// and returns views `[1, length + T, width]` of everything stored for that layer.
    /// The length itself moves on in `advance(by:)`, after every layer has written.
    public func store(layer: Int, keys newKeys: Tensor, values newValues: Tensor) -> (keys: Tensor, values: Tensor, keyBatch: [Int]?) {
        let t = newKeys.count / width
        precondition(newKeys.lastDim == width && newValues.count == newKeys.count, "KV cache: rows of \(newKeys.shape) do not match width \(width)")
        precondition(length + t <= maxLength, "KV cache: \(length) + \(t) positions exceed capacity \(maxLength)")
        (keys[layer].data + length * width).update(from: newKeys.data, count: newKeys.count)
        (values[layer].data + length * width).update(from: newValues.data, count: newValues.count)
        let n = length + t
        return (Tensor(shape: [1, n, width], storage: keys[layer].storage, offset: keys[layer].offset),
                Tensor(shape: [1, n, width], storage: values[layer].storage, offset: values[layer].offset), nil)
    }

    /// Marks `count` more positions as stored (called once per forward, after all layers).
    public func advance(by count: Int) {
        precondition(count >= 0 && length + count <= maxLength, "KV cache: cannot advance \(length) by \(count)")
        length += count
    }

    /// Rolls back to the first `position` positions; later rows are overwritten by the next forward.
    public func truncate(to position: Int) {
        precondition(position >= 0 && position <= length, "KV cache: cannot truncate \(length) to \(position)")
        length = position
    }

    /// Empties the cache, keeping its memory.
    public func reset() { length = 0 }
}
