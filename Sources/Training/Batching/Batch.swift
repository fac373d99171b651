import Engine

/// One micro-batch: `batch` rows of `length` tokens, right-padded.
public struct Batch: Sendable {
    public var batch: Int
    public var length: Int
    /// `[batch · length]` token ids, row-major; padding uses `padId`.
    public var ids: [Int32]
    /// `[batch · length]` unshifted targets, -100 on padding and untrained tokens (and on
    /// the first token of every packed example, which nothing before it may predict).
    public var labels: [Int32]
    /// Real (unpadded) length of each row.
    public var rowLengths: [Int]
    /// Prompt length of each row (packed rows: 0).
    public var promptLengths: [Int]
    /// SA-ESS class of each row, nil when unlabelled (or packed).
    public var safetyClasses: [Int32?]
    /// Packed rows: the lengths of the examples each row holds, in order; nil when every
    /// row is one example.
    public var segments: [[Int]]? = nil
    /// On one process's share of a batch (`share(_:)`): which rows it holds of how many,
    /// and the whole batch's rows without their tokens (`wholeLayout`).
    public private(set) var shard: Shard?

    /// Which rows of a batch a share holds.
    public struct Shard: Sendable {
        public var rows: Range<Int>
        /// Rows in the whole batch.
        public var of: Int
        fileprivate var rowLengths: [Int]
        fileprivate var promptLengths: [Int]
        fileprivate var safetyClasses: [Int32?]
    }

    /// Tokens that are not padding.
    public var tokenCount: Int { rowLengths.reduce(0, +) }

    /// Packed rows: each example attends only to itself (block-diagonal causal mask) from
    /// position 0, so a packed batch computes what one example per row computes. Nil
    /// (the causal rule, positions 0..<length) otherwise.
    public var attention: (mask: AttentionMask, positions: [Int32])? {
        guard let segments else { return nil }
        var positions = [Int32](repeating: 0, count: batch * length)
        for (b, row) in segments.enumerated() {
            var t = b * length
            for n in row {
                for p in 0..<n { positions[t + p] = Int32(p) }
                t += n
            }
        }
        return (AttentionMask.blockCausal(segments: segments, length: length), positions)
    }

    /// Rows `range` as a batch of their own, at the same length: one process's share of a
    /// batch in data-parallel training. An empty range (more processes than rows, as
    /// packing can leave) gives the first row with nothing to learn: every label -100, no
    /// class. It adds nothing to any loss term, and lets that process take part in the
    /// step's collectives like the others.
    public func share(_ range: Range<Int>) -> Batch {
        guard !range.isEmpty else {
            var blank = share(0..<1)
            blank.shard?.rows = range
            blank.labels = [Int32](repeating: -100, count: length)
            blank.safetyClasses = [nil]
            return blank
        }
        let cells = (range.lowerBound * length)..<(range.upperBound * length)
        var out = self
        out.shard = Shard(rows: range, of: batch, rowLengths: rowLengths, promptLengths: promptLengths, safetyClasses: safetyClasses)
        out.batch = range.count
        out.ids = Array(ids[cells])
        out.labels = Array(labels[cells])
        out.rowLengths = Array(rowLengths[range])
        out.promptLengths = Array(promptLengths[range])
        out.safetyClasses = Array(safetyClasses[range.clamped(to: safetyClasses.indices)])
        out.segments = segments.map { Array($0[range]) }
        return out
    }

    /// A share's whole batch, every row's lengths and class but no tokens (ids 0, labels
    /// -100): for objectives whose layout depends on every row, so that a share lays its
    /// rows out as the whole batch would. Nil on a batch that is not a share.
    public var wholeLayout: Batch? {
        guard let shard else { return nil }
        let cells = shard.of * length
        return Batch(batch: shard.of, length: length, ids: [Int32](repeating: 0, count: cells),
                     labels: [Int32](repeating: -100, count: cells), rowLengths: shard.rowLengths,
                     promptLengths: shard.promptLengths, safetyClasses: shard.safetyClasses)
    }
}
