import Engine

/// Deterministic batching: each epoch is a permutation drawn from `(seed, epoch)`, so a
/// resumed run sees exactly the batches an uninterrupted one would.
///
/// Without packing, every row is one example, truncated to `seqLen` and right-padded to
/// the longest row of its batch (rounded up to a multiple of 8) (causal attention never lets real tokens see the padding
/// that follows them, and padding carries no loss). With packing, examples are joined
/// (each ends with `separatorId`) into a stream cut into full `seqLen` rows.
///
/// An example's `weight` (its file's `weight` in the recipe) is how many times an epoch
/// shows it on average: ⌊w⌋ times, plus once more in a share w − ⌊w⌋ of the epochs, spread
/// evenly from a phase drawn per example, so weight 0.5 means every other epoch, not a
/// coin flip each time. An epoch then holds the weights' sum, rounded, of examples.
public struct Batcher: Sendable {
    public let examples: [EncodedExample]
    public let batchSize: Int
    public let seqLen: Int
    public let packing: Bool
    public let seed: UInt64
    public let padId: Int32
    public let separatorId: Int32
    /// Whether every example has weight 1 (each epoch is then a plain permutation).
    private let unweighted: Bool
    /// Examples in one epoch: the weights' sum, rounded.
    private let epochExamples: Int

    public init(examples: [EncodedExample], batchSize: Int, seqLen: Int, packing: Bool, seed: UInt64,
                padId: Int32, separatorId: Int32) {
        self.examples = examples
        self.batchSize = batchSize
        self.seqLen = seqLen
        self.packing = packing
        self.seed = seed
        self.padId = padId
        self.separatorId = separatorId
        unweighted = examples.allSatisfy { $0.weight == 1 }
        epochExamples = unweighted ? examples.count : max(1, Int(examples.reduce(0) { $0 + $1.weight }.rounded()))
    }

    /// Examples longer than `seqLen` (truncated).
    public var truncatedCount: Int { packing ? 0 : examples.count { $0.ids.count > seqLen } }

    /// Micro-batches in one epoch (the last, partial batch is dropped unless it is the only one).
    public var batchesPerEpoch: Int {
        let rows = packing ? packedRowCount : epochExamples
        return max(1, rows / batchSize)
    }

    private var packedRowCount: Int {
        max(1, Int(examples.reduce(0) { $0 + $1.weight * Double($1.ids.count + 1) } / Double(seqLen)))
    }

    /// The `index`-th micro-batch of `epoch`.
    public func batch(epoch: Int, index: Int) -> Batch {
        let order = permutation(epoch: epoch)
        if packing { return packedBatch(order: order, index: index) }
        let lo = (index % batchesPerEpoch) * batchSize
        let rows = (lo..<min(lo + batchSize, order.count)).map { examples[order[$0]] }
        // Rounded up to a multiple of 8: fewer distinct shapes for the buffer pool and kernels.
        let longest = rows.map { min($0.ids.count, seqLen) }.max() ?? 1
        let length = min(seqLen, (longest + 7) / 8 * 8)
        var out = Batch(batch: rows.count, length: length,
                        ids: [Int32](repeating: padId, count: rows.count * length),
                        labels: [Int32](repeating: -100, count: rows.count * length),
                        rowLengths: [], promptLengths: [], safetyClasses: [])
        for (r, e) in rows.enumerated() {
            let n = min(e.ids.count, length)
            for t in 0..<n {
                out.ids[r * length + t] = e.ids[t]
                out.labels[r * length + t] = e.labels[t]
            }
            out.rowLengths.append(n)
            out.promptLengths.append(min(e.promptLength, n))
            out.safetyClasses.append(e.safetyClass)
        }
        return out
    }

    private func packedBatch(order: [Int], index: Int) -> Batch {
        // The epoch's stream, cut into rows; rows for this batch only are materialised.
        let first = (index % batchesPerEpoch) * batchSize * seqLen
        let needed = batchSize * seqLen
        var ids: [Int32] = [], labels: [Int32] = []
        ids.reserveCapacity(needed)
        labels.reserveCapacity(needed)
        var position = 0
        outer: for i in order {
            let e = examples[i]
            let span = e.ids.count + 1
            if position + span <= first { position += span; continue }
            for t in 0..<span {
                if position >= first {
                    ids.append(t < e.ids.count ? e.ids[t] : separatorId)
                    labels.append(t < e.ids.count ? e.labels[t] : separatorId)
                    if ids.count == needed { break outer }
                }
                position += 1
            }
        }
        let rows = max(1, ids.count / seqLen)
        let count = rows * seqLen
        while ids.count < count { ids.append(padId); labels.append(-100) }
        return Batch(batch: rows, length: seqLen, ids: Array(ids.prefix(count)), labels: Array(labels.prefix(count)),
                     rowLengths: Array(repeating: seqLen, count: rows), promptLengths: Array(repeating: 0, count: rows),
                     safetyClasses: Array(repeating: nil, count: rows))
    }

    /// The epoch's example indices (each as often as its weight gives), shuffled by
    /// Fisher–Yates with a generator seeded from `(seed, epoch)`.
    func permutation(epoch: Int) -> [Int] {
        var rng = SeededRandom(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        var order = unweighted ? Array(examples.indices) : weightedDraw(epoch: epoch)
        if order.isEmpty { order = Array(examples.indices) }
        if order.count > 1 {
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        }
        // Fractional weights make epochs differ by a few examples; a fixed epoch length
        // keeps the step count, the schedule and resumption exact.
        let target = epochExamples
        while order.count < target { order += order.prefix(target - order.count) }
        return Array(order.prefix(target))
    }

    /// Each example's copies in `epoch`: how many multiples of 1 its running total
    /// `phase + w·e` crosses during the epoch, so the copies over epochs 0..<E add up to
    /// w·E within one.
    private func weightedDraw(epoch: Int) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(epochExamples + examples.count / 4)
        for (i, e) in examples.enumerated() {
            var draw = SeededRandom(seed: seed ^ (UInt64(i) &+ 1) &* 0xD6E8_FEB8_6659_FD93)
            let phase = Double(draw.next() >> 11) / Double(1 << 53)
            let copies = Int((phase + e.weight * Double(epoch + 1)).rounded(.down)) - Int((phase + e.weight * Double(epoch)).rounded(.down))
            for _ in 0..<copies { out.append(i) }
        }
        return out
    }
}
