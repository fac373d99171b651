import Engine

/// A lookup table of row vectors: token embeddings (`wte`, `embed_tokens`) and GPT-2's
/// learned position embeddings (`wpe`).
///
/// Buffers: `table` `[rows, d]`. Forward: ids (`shape` elements, row-major) → `shape + [d]`.
/// The token table doubles as the LM head's weight when embeddings are tied.
public final class Embedding {
    /// `[rows, d]`.
    public let table: Variable

    /// A lookup over an existing table.
    public init(table: Variable) {
        self.table = table
    }

    /// Number of rows (vocabulary size or context length).
    public var rows: Int { table.shape[0] }

    /// ids `shape` → `shape + [d]`. Callers check ids are within `0..<rows`.
    public func forward(tape: Tape, ids: [Int32], shape: [Int]) -> Variable {
        tape.embedding(ids: ids, shape: shape, table: table)
    }
}
