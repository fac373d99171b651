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
}
