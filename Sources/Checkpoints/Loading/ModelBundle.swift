import Engine
import Foundation
import Models
import Tokenizers

/// A model ready to use: the transformer, its tokenizer, and the checkpoint it came from
/// (whose other sections, such as unit maps, the safety signal and the gate record, the
/// safety methods read).
///
/// LoRA adapters stored in the checkpoint are merged into the weights on load: inference
/// then costs nothing extra, and a new fine-tune starts from the adapted model.
public final class ModelBundle {
    public let model: TransformerModel
    public let tokenizer: Tokenizer?
    /// The checkpoint as read (for a Hugging Face folder or GGUF file: as imported), without
    /// its weights: the model holds them, and a second copy would double a run's memory.
    /// Sections computed later (an SSAH unit map) are stored here so that the run's
    /// checkpoints carry them.
    public var checkpoint: Checkpoint
    /// Where it was read from.
    public let source: URL

    /// The canonical digest of the weights the checkpoint held (`Checkpoint.weightsSHA256`,
    /// before any adapter was merged): what a fine-tune records as its parent. Nil when it
    /// held none (a freshly initialised model). Computed when first asked, from the model
    /// while it still holds exactly those weights: hashing 135M parameters takes about 2 s,
    /// which commands that never ask (generate, eval) do not pay. Ask before training the
    /// model (`Trainer` does).
    public var weightsSHA256: String? {
        if case .ofModel = digest { digest = .known(TensorDigest.canonical(model.huggingFaceWeights(sharing: true))) }
        guard case let .known(value) = digest else { return nil }
        return value
    }

    private enum Digest {
        case known(String?)
        /// The model's weights are still the checkpoint's.
        case ofModel
    }
    private var digest: Digest

    /// Wraps a model built from `checkpoint`, keeping the digest of its weights, not the weights.
    public convenience init(model: TransformerModel, tokenizer: Tokenizer?, checkpoint: Checkpoint, source: URL) {
        self.init(model: model, tokenizer: tokenizer, checkpoint: checkpoint,
                  digest: .known(checkpoint.weights.isEmpty ? nil : checkpoint.weightsSHA256), source: source)
    }

    private init(model: TransformerModel, tokenizer: Tokenizer?, checkpoint: Checkpoint, digest: Digest, source: URL) {
        self.model = model
        self.tokenizer = tokenizer
        self.checkpoint = checkpoint
        self.checkpoint.weights = [:]
        self.digest = digest
        self.source = source
    }

    /// This bundle's checkpoint, digest and source around another model (a copy, or one
    /// with a grown vocabulary) and tokenizer.
    public func replacing(model: TransformerModel, tokenizer: Tokenizer?) -> ModelBundle {
        let digest = model === self.model ? digest : .known(weightsSHA256)
        return ModelBundle(model: model, tokenizer: tokenizer, checkpoint: checkpoint, digest: digest, source: source)
    }

    /// Reads a Hugging Face folder (`config.json`, safetensors, `tokenizer.json`), a GGUF
    /// file (`.gguf`, imported on the fly) or a SafeTune checkpoint file; `trainable`
    /// decides whether base weights take gradients.
    public static func load(_ url: URL, trainable: Bool = false) throws -> ModelBundle {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ModelBundleError.notFound(path: url.path)
        }
        var checkpoint = isDirectory.boolValue ? try HuggingFaceModel.importModel(from: url)
            : url.pathExtension.lowercased() == "gguf" ? try GGUFModel.importModel(from: url) : try Checkpoint.read(from: url)
        if checkpoint.isAdapterOnly { checkpoint = try attachingPinnedBase(checkpoint, source: url) }
        let adapters = checkpoint.adapters.flatMap { $0.groups.isEmpty ? nil : $0 }
        // Merging changes the model's weights: the stored ones are hashed first.
        let digest = adapters == nil ? Digest.ofModel : .known(checkpoint.weightsSHA256)
        // The model takes the weights over, so they are in memory once.
        let weights = checkpoint.weights
        checkpoint.weights = [:]
        let model = try TransformerModel(config: checkpoint.config, weights: consume weights, trainable: trainable)
        if let adapters {
            try LoRAGroup.attach(adapters, to: model, source: url.path)
            LoRA.merge(model)
        }
        let tokenizer = try checkpoint.tokenizer(source: url.path)
        return ModelBundle(model: model, tokenizer: tokenizer, checkpoint: checkpoint, digest: digest, source: url)
    }

    /// An adapter-only checkpoint made on a pinned base model (its provenance names it, as
    /// `model.base: smollm2` does) with that base's cached file attached. A base whose
    /// weights are not the recorded ones is refused (`CheckpointError.wrongBase`).
    public static func attachingPinnedBase(_ checkpoint: Checkpoint, source url: URL) throws -> Checkpoint {
        guard let name = checkpoint.provenance?.regime?.base, let pinned = BaseModel.named(name) else {
            throw ModelBundleError.adapterOnly(path: url.path)
        }
        let base = try GGUFModel.importModel(from: pinned.locate())
        return try checkpoint.attaching(to: base, source: url.path)
    }

    /// `load(_:trainable:)` for a path string, or the name of a pinned base model
    /// (`smollm2`: the fetched file in the model cache).
    public static func load(path: String, trainable: Bool = false) throws -> ModelBundle {
        try load(resolve(path), trainable: trainable)
    }

    /// The file a model reference names: a pinned base model's cached file (an error that
    /// names the missing file and the command that fetches it), else the path itself.
    public static func resolve(_ reference: String) throws -> URL {
        if let base = BaseModel.named(reference) { return try base.locate() }
        return URL(fileURLWithPath: reference)
    }
}

/// A model path that cannot be used as it is.
public enum ModelBundleError: Error, Equatable, CustomStringConvertible {
    case notFound(path: String)
    case adapterOnly(path: String)
    case tokenizerRequired(path: String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path): no such model folder or checkpoint"
        case let .adapterOnly(path): return "\(path): an adapter-only checkpoint whose base is not a pinned model; attach it to its base first"
        case let .tokenizerRequired(path): return "\(path): no tokenizer.json; this command needs one"
        }
    }
}
