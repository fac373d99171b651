import Engine

/// Deterministic batching: each epoch is a permutation drawn from `(seed, epoch)`, so a
/// resumed run sees exactly the batches an uninterrupted one would.
///
/// A batch is `batchSize` examples of the permutation, each truncated to `seqLen`. Without
/// packing, every row is one example, right-padded to the longest row of its batch (rounded
/// up to a multiple of 8; causal attention never lets real tokens see the padding that
/// follows them, and padding carries no loss). With packing, the same examples are laid
/// whole, end to end, into as few rows of at most `seqLen` as first-fit-decreasing finds,
/// each attending only to itself (`Batch.attention`): the same loss and gradients as the
/// unpacked batch, without the FLOPs spent on padding.
///
/// With `groupByLength`, each window of 16 batches of the shuffled epoch is sorted by
/// length before it is cut into batches (as Hugging Face's `group_by_length` does), so
/// unpacked rows are padded little; which examples share an epoch is unchanged.
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
    public let groupByLength: Bool
    public let seed: UInt64
    public let padId: Int32
    /// Whether every example has weight 1 (each epoch is then a plain permutation).
    private let unweighted: Bool
    /// Examples in one epoch: the weights' sum, rounded.
    private let epochExamples: Int

    public init(examples: [EncodedExample], batchSize: Int, seqLen: Int, packing: Bool, groupByLength: Bool = false,
                seed: UInt64, padId: Int32) {
        self.examples = examples
        self.batchSize = batchSize
        self.seqLen = seqLen
        self.packing = packing
        self.groupByLength = groupByLength
        self.seed = seed
        self.padId = padId
        unweighted = examples.allSatisfy { $0.weight == 1 }
        epochExamples = unweighted ? examples.count : max(1, Int(examples.reduce(0) { $0 + $1.weight }.rounded()))
    }

    /// Examples longer than `seqLen` (truncated).
    public var truncatedCount: Int { examples.count { $0.ids.count > seqLen } }

    /// Micro-batches in one epoch (the last, partial batch is dropped unless it is the only one).
    public var batchesPerEpoch: Int { max(1, epochExamples / batchSize) }

    /// The `index`-th micro-batch of `epoch`.
    public func batch(epoch: Int, index: Int) -> Batch {
        let order = permutation(epoch: epoch)
        let lo = (index % batchesPerEpoch) * batchSize
        let chosen = (lo..<min(lo + batchSize, order.count)).map { examples[order[$0]] }
        // Rows: one example each, or examples packed whole (longest first into the first row with room).
        var rows: [[EncodedExample]] = []
        if packing {
            var used: [Int] = []
            for e in chosen.sorted(by: { min($0.ids.count, seqLen) > min($1.ids.count, seqLen) }) {
                let n = min(e.ids.count, seqLen)
                if let r = used.firstIndex(where: { $0 + n <= seqLen }) {
                    rows[r].append(e)
                    used[r] += n
                } else {
                    rows.append([e])
                    used.append(n)
                }
            }
        } else {
            rows = chosen.map { [$0] }
        }
        // Rounded up to a multiple of 8: fewer distinct shapes for the buffer pool and kernels.
        let longest = rows.map { $0.reduce(0) { $0 + min($1.ids.count, seqLen) } }.max() ?? 1
        let length = min(seqLen, (longest + 7) / 8 * 8)
        var out = Batch(batch: rows.count, length: length,
                        ids: [Int32](repeating: padId, count: rows.count * length),
                        labels: [Int32](repeating: -100, count: rows.count * length),
                        rowLengths: [], promptLengths: [], safetyClasses: [], segments: packing ? [] : nil)
        for (r, row) in rows.enumerated() {
            var start = r * length
            for (k, e) in row.enumerated() {
                let n = min(e.ids.count, seqLen)
                for t in 0..<n {
                    out.ids[start + t] = e.ids[t]
                    // Nothing before an example's first token may predict it.
                    out.labels[start + t] = t == 0 && k > 0 ? -100 : e.labels[t]
                }
                start += n
            }
            out.rowLengths.append(start - r * length)
            out.promptLengths.append(packing ? 0 : min(row[0].promptLength, length))
            out.safetyClasses.append(packing ? nil : row[0].safetyClass)
            out.segments?.append(row.map { min($0.ids.count, seqLen) })
        }
        return out
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
        order = Array(order.prefix(target))
        guard groupByLength else { return order }
        let window = batchSize * 16
        return stride(from: 0, to: order.count, by: window).flatMap { start in
            order[start..<min(start + window, order.count)].sorted {
                (min(examples[$0].ids.count, seqLen), $1) > (min(examples[$1].ids.count, seqLen), $0)
            }
        }
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
