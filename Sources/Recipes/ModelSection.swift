import Foundation
import Training

/// `model`: what the run starts from.
public struct ModelSection: Sendable, Equatable {
    /// Chat template used to turn examples into tokens.
    public enum Template: String, Sendable, CaseIterable {
        case llama2, chatml, plain, auto
    }

    /// Base model: a SafeTune .h5 checkpoint, a Hugging Face folder, a GGUF file or a pinned
    /// model's name (`smollm2`); nil when training from scratch.
    public let base: RecipePath?
    /// Chat template.
    public let template: Template
    /// Shape for training from scratch (`model.init`); nil when fine-tuning `base`.
    public let initShape: ModelShape?
    /// Tokenizer file; nil means the base model's own.
    public let tokenizer: RecipePath?

    /// Whether `base` is a SafeTune checkpoint (which may carry a stored unit map).
    public var baseIsCheckpoint: Bool { base?.url.pathExtension.lowercased() == "h5" }

    init(reading r: MappingReader) throws {
        base = try r.path("base")
        template = try r.choice("template", default: Template.auto)
        tokenizer = try r.path("tokenizer")
        if r.has("init") {
            initShape = try ModelShape(reading: r.section("init", allowed: RecipeSchema.children(of: "model.init")))
        } else {
            initShape = nil
        }
        if base != nil, initShape != nil {
            throw RecipeError.conflict(r.location(of: "init"), keyPath: r.full("init"),
                                       message: "give either model.base or model.init, not both")
        }
        if base == nil, initShape == nil {
            throw RecipeError.missingKey(r.location, keyPath: r.full("base"))
        }
        if initShape != nil, tokenizer == nil {
            throw RecipeError.conflict(r.location(of: "init"), keyPath: r.full("init"),
                                       message: "training from scratch needs model.tokenizer")
        }
    }

    func canonical(relativeTo root: URL) -> CanonicalValue {
        .object([("base", base.map { .string($0.relative(to: root)) } ?? .null),
                 ("template", .string(template.rawValue)),
                 ("tokenizer", tokenizer.map { .string($0.relative(to: root)) } ?? .null),
                 ("init", initShape?.canonical ?? .null)])
    }
}
