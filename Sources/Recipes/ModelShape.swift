import Training

/// The shape of a model trained from scratch (`model.init`); the vocabulary size is
/// taken from the tokenizer when the model is built.
public struct ModelShape: Sendable, Equatable {
    /// Architecture family.
    public enum Family: String, Sendable, CaseIterable {
        case gpt2, llama
    }

    /// Architecture family.
    public let family: Family
    /// Transformer blocks.
    public let layers: Int
    /// Hidden size.
    public let dModel: Int
    /// Attention heads.
    public let heads: Int
    /// Key/value heads (equal to `heads` unless grouped-query attention).
    public let kvHeads: Int
    /// MLP intermediate size.
    public let dFF: Int
    /// Maximum sequence length.
    public let context: Int

    /// Creates a shape directly (no validation; recipes validate through the loader).
    public init(family: Family, layers: Int, dModel: Int, heads: Int, kvHeads: Int, dFF: Int, context: Int) {
        self.family = family
        self.layers = layers
        self.dModel = dModel
        self.heads = heads
        self.kvHeads = kvHeads
        self.dFF = dFF
        self.context = context
    }

    init(reading r: MappingReader) throws {
        family = try Self.required(r, "family") { try r.choice("family", default: Family.gpt2) }
        layers = try Self.required(r, "layers") { try r.int("layers", default: 0, range: .closed(1, 1024)) }
        dModel = try Self.required(r, "d_model") { try r.int("d_model", default: 0, range: .closed(8, 65536)) }
        heads = try Self.required(r, "heads") { try r.int("heads", default: 0, range: .closed(1, 1024)) }
        kvHeads = try r.int("kv_heads", default: heads, range: .closed(1, 1024))
        dFF = try r.int("d_ff", default: 4 * dModel, range: .closed(1, 1_048_576))
        context = try r.int("context", default: 1024, range: .closed(8, 1_048_576))

        if dModel % heads != 0 {
            throw RecipeError.conflict(r.location(of: "heads"), keyPath: r.full("heads"),
                                       message: "d_model \(dModel) is not divisible by heads \(heads)")
        }
        if heads % kvHeads != 0 {
            throw RecipeError.conflict(r.location(of: "kv_heads"), keyPath: r.full("kv_heads"),
                                       message: "heads \(heads) is not divisible by kv_heads \(kvHeads)")
        }
        if family == .gpt2, kvHeads != heads {
            throw RecipeError.conflict(r.location(of: "kv_heads"), keyPath: r.full("kv_heads"),
                                       message: "gpt2 has no grouped-query attention: kv_heads must equal heads")
        }
        if family == .llama, (dModel / heads) % 2 != 0 {
            throw RecipeError.conflict(r.location(of: "d_model"), keyPath: r.full("d_model"),
                                       message: "llama needs an even head size for rotary embeddings, got \(dModel / heads)")
        }
    }

    private static func required<T>(_ r: MappingReader, _ key: String, _ read: () throws -> T) throws -> T {
        guard r.has(key) else { throw RecipeError.missingKey(r.location, keyPath: r.full(key)) }
        return try read()
    }

    var canonical: CanonicalValue {
        .object([("family", .string(family.rawValue)), ("layers", .int(layers)), ("d_model", .int(dModel)),
                 ("heads", .int(heads)), ("kv_heads", .int(kvHeads)), ("d_ff", .int(dFF)), ("context", .int(context))])
    }
}
