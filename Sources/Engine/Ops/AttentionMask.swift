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

    /// Causal attention within each segment of a packed row: row b holds sequences of
    /// `segments[b]` tokens one after another (the rest is padding, which reads nothing);
    /// a query reads the keys of its own segment up to itself. `[batch, length, length]`.
    public static func blockCausal(segments: [[Int]], length: Int) -> AttentionMask {
        var flags = [UInt8](repeating: 0, count: segments.count * length * length)
        flags.withUnsafeMutableBufferPointer { f in
            for (b, row) in segments.enumerated() {
                var start = 0
                for n in row {
                    precondition(n >= 0 && start + n <= length, "AttentionMask: segments \(row) exceed length \(length)")
                    for i in start..<start + n { (f.baseAddress! + (b * length + i) * length + start).update(repeating: 1, count: i - start + 1) }
                    start += n
                }
            }
        }
        return AttentionMask(batch: segments.count, queries: length, keys: length, flags: flags)
    }

    private init(batch: Int, queries: Int, keys: Int, flags: [UInt8]) {
        self.batch = batch
        self.queries = queries
        self.keys = keys
        allowed = flags
    }

    /// Whether query `i` of sequence `b` may read key `j`.
    public func isAllowed(_ b: Int, _ i: Int, _ j: Int) -> Bool {
        allowed[(b * queries + i) * keys + j] != 0
    }
}
