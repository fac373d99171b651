/// One micro-batch: `batch` rows of `length` tokens, right-padded.
public struct Batch: Sendable {
    public var batch: Int
    public var length: Int
    /// `[batch · length]` token ids, row-major; padding uses `padId`.
    public var ids: [Int32]
    /// `[batch · length]` unshifted targets, -100 on padding and untrained tokens.
    public var labels: [Int32]
    /// Real (unpadded) length of each row.
    public var rowLengths: [Int]
    /// Prompt length of each row (packed rows: 0).
    public var promptLengths: [Int]
    /// SA-ESS class of each row, nil when unlabelled (or packed).
    public var safetyClasses: [Int32?]

    /// Tokens that are not padding.
    public var tokenCount: Int { rowLengths.reduce(0, +) }
}
