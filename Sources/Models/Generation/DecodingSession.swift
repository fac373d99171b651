import Engine

/// One sequence being decoded: feeds tokens to the model and returns the next-token logits,
/// with a KV cache (only new tokens are computed) or by full recomputation (the reference
/// the cache is tested against). Rolling back forgets tokens after a position, which is
/// how SA-ESS rewinds and forces a prefix.
public final class DecodingSession {
    /// The model decoded with.
    public let model: TransformerModel
    /// Longest sequence this session accepts (prompt plus generated tokens).
    public let maxLength: Int
    /// The cache, or nil when every step recomputes the whole sequence.
    public let cache: KVCache?
    /// Every token fed so far.
    public private(set) var tokens: [Int] = []
    private let tape = Tape()

    /// A session for up to `maxLength` tokens (capped by the model's context).
    public init(model: TransformerModel, maxLength: Int, useCache: Bool = true) {
        self.model = model
        self.maxLength = max(1, min(maxLength, model.config.maxPositions))
        cache = useCache ? KVCache(config: model.config, maxLength: self.maxLength) : nil
    }

    /// Feeds `newTokens` and returns the logits `[V]` predicting the token after them.
    public func append(_ newTokens: [Int]) throws(ModelError) -> [Float] {
        if newTokens.isEmpty { throw .emptyInput }
        if tokens.count + newTokens.count > maxLength {
            throw .sequenceTooLong(length: tokens.count + newTokens.count, limit: maxLength)
        }
        let ids = newTokens.map { Int32(clamping: $0) }
        try model.validate(ids: ids, length: ids.count, start: tokens.count)
        tokens += newTokens
        defer { tape.reset() }
        return tape.withoutGrad {
            let hidden: Variable
            if let cache {
                hidden = model.hiddenStates(tape: tape, ids: ids, batch: 1, length: ids.count, cache: cache)
            } else {
                let all = tokens.map { Int32($0) }
                hidden = model.hiddenStates(tape: tape, ids: all, batch: 1, length: all.count)
            }
            let rows = hidden.value.rows
            return model.logits(tape: tape, hidden: hidden, rows: [rows - 1]).value.scalars
        }
    }

    /// Forgets every token from `position` on (the cache rolls back with them).
    public func rollback(to position: Int) {
        let p = max(0, min(position, tokens.count))
        tokens.removeLast(tokens.count - p)
        cache?.truncate(to: p)
    }
}
