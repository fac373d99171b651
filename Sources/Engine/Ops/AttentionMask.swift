/// Which keys each query may attend to: `allowed[b][i][j]` stored row-major as UInt8
/// `[batch, queries, keys]` (1 = allowed), shared by every head. When passed to
/// `Tape.attention` it replaces the causal rule (padding, packed sequences, prefix-LM).
/// A query row with no allowed key outputs zeros.
public struct AttentionMask: Sendable, Equatable {
    /// Number of sequences.
    public let batch: Int
    /// Query positions per sequence (Tq).
    public let queries: Int
    /// Key positions per sequence (Tk).
    public let keys: Int
    /// `batch · queries · keys` flags, 1 = the query may read the key.
    public let allowed: [UInt8]

    /// A mask built from a predicate over (sequence, query, key).
    public init(batch: Int, queries: Int, keys: Int, allowed: (Int, Int, Int) -> Bool) {
        precondition(batch >= 0 && queries >= 0 && keys >= 0, "AttentionMask: negative size")
        var flags = [UInt8](repeating: 0, count: batch * queries * keys)
        for b in 0..<batch {
            for i in 0..<queries {
                for j in 0..<keys where allowed(b, i, j) { flags[(b * queries + i) * keys + j] = 1 }
            }
        }
        self.batch = batch
        self.queries = queries
        self.keys = keys
        self.allowed = flags
    }

    /// The causal rule made explicit: query i sits at absolute position keys − queries + i
    /// and sees every key up to and including that position.
    public static func causal(batch: Int, queries: Int, keys: Int) -> AttentionMask {
        AttentionMask(batch: batch, queries: queries, keys: keys) { _, i, j in j <= keys - queries + i }
    }

    /// Whether query `i` of sequence `b` may read key `j`.
    public func isAllowed(_ b: Int, _ i: Int, _ j: Int) -> Bool {
        allowed[(b * queries + i) * keys + j] != 0
    }
}
