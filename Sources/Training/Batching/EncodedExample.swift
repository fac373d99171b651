/// An example as token ids, ready for batching.
public struct EncodedExample: Sendable, Equatable {
    /// Token ids, BOS included where the tokenizer adds one.
    public var ids: [Int32]
    /// Per-token training targets, aligned with `ids` (not shifted): the token itself where
    /// the loss covers it, -100 where it does not (prompts, system turns).
    public var labels: [Int32]
    /// SA-ESS class (0 benign, 1 malicious), nil when unlabelled.
    public var safetyClass: Int32?
    /// Number of leading tokens before the first answer token (the prompt span).
    public var promptLength: Int
    /// Times the example is seen per epoch, on average (its file's `weight` in the recipe).
    public var weight: Double

    public init(ids: [Int32], labels: [Int32], safetyClass: Int32? = nil, promptLength: Int, weight: Double = 1) {
        self.ids = ids
        self.labels = labels
        self.safetyClass = safetyClass
        self.promptLength = promptLength
        self.weight = weight
    }

    /// Tokens the loss covers.
    public var trainedTokens: Int { labels.count { $0 != -100 } }
}
