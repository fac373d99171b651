import Engine
import Foundation
import Models
import Tokenizers

/// Everything SafeTune stores about one model, as a value: configuration, tokenizer,
/// weights (Hugging Face names and layouts), and optional adapters, unit maps, safety
/// directions, signal head, optimizer state, provenance and gate verdict.
///
/// An adapter-only checkpoint has no weights and names its base with `baseSHA256`
/// (see `TensorDigest.canonical`); `attaching(to:)` rejects any other base.
/// The on-disk layout is documented key by key in `docs/checkpoint-format.md`.
public struct Checkpoint: Sendable {
    /// Value of the root `format` attribute.
    public static let formatName = "safetune-checkpoint"
    /// The layout version this code writes and the newest it reads.
    public static let formatVersion = 1

    public var config: ModelConfig
    /// The `tokenizer.json` bytes, stored verbatim.
    public var tokenizerJSON: Data?
    /// The model's own chat template (Jinja text, as a GGUF file's `tokenizer.chat_template`
    /// or a Hugging Face `tokenizer_config.json` ships it); `ChatTemplate` recognises it.
    public var chatTemplate: String?
    /// Full weights; empty in an adapter-only checkpoint.
    public var weights: [String: Tensor]
    /// Canonical weights digest of the base an adapter-only checkpoint belongs to.
    public var baseSHA256: String?
    /// Token rows an adapter-only checkpoint appends to its base's vocabulary (the SA-ESS
    /// `[CLS]` token): one `[added, d]` tensor per vocabulary table
    /// (`ParameterLayout.vocabularyTables`); `config` counts them.
    public var addedRows: TensorGroup?
    /// LoRA adapters: one subgroup per adapted module (see the format document).
    public var adapters: TensorGroup?
    public var units: UnitMaps?
    /// Where the model separates harmful from harmless prompts, per block (the gate's
    /// direction stage reads a parent's; the Safety module's `SafetyDirections`).
    public var directions: TensorGroup?
    /// SA-ESS safety-signal head.
    public var signal: TensorGroup?
    /// Optimizer step and moments for exact resume.
    public var optimizer: TensorGroup?
    public var provenance: Provenance?
    public var gate: GateRecord?
    /// ISO 8601 creation time.
    public var created: String
    /// SafeTune version that wrote the file.
    public var safetuneVersion: String

    public init(config: ModelConfig, weights: [String: Tensor], tokenizerJSON: Data? = nil, chatTemplate: String? = nil, baseSHA256: String? = nil,
                addedRows: TensorGroup? = nil, adapters: TensorGroup? = nil, units: UnitMaps? = nil, directions: TensorGroup? = nil, signal: TensorGroup? = nil, optimizer: TensorGroup? = nil,
                provenance: Provenance? = nil, gate: GateRecord? = nil,
                created: String = ISO8601DateFormatter().string(from: Date()), safetuneVersion: String = SafeTuneVersion.current) {
        self.config = config
        self.weights = weights
        self.tokenizerJSON = tokenizerJSON
        self.chatTemplate = chatTemplate
        self.baseSHA256 = baseSHA256
        self.addedRows = addedRows
        self.adapters = adapters
        self.units = units
        self.directions = directions
        self.signal = signal
        self.optimizer = optimizer
        self.provenance = provenance
        self.gate = gate
        self.created = created
        self.safetuneVersion = safetuneVersion
    }

    /// Whether this checkpoint carries no weights of its own.
    public var isAdapterOnly: Bool { baseSHA256 != nil }

    /// The canonical digest of `weights` (what an adapter-only child records as its base).
    public var weightsSHA256: String { TensorDigest.canonical(weights) }

    /// The same checkpoint without weights, naming these weights as its base. When the
    /// vocabulary grew past the base's `baseVocabularySize` tokens, the added rows are kept
    /// (`addedRows`) and the base is the weights without them.
    public func adapterOnly(baseVocabularySize: Int? = nil) -> Checkpoint {
        var copy = self
        copy.weights = [:]
        let kept = baseVocabularySize ?? config.vocabSize
        guard baseSHA256 == nil, kept < config.vocabSize, kept > 0 else {
            copy.baseSHA256 = baseSHA256 ?? weightsSHA256
            return copy
        }
        var base = weights, added: [String: Tensor] = [:]
        let d = config.hiddenSize
        for name in ParameterLayout(config: config).vocabularyTables {
            guard let table = weights[name] else { continue }
            base[name] = Self.rows(of: table, 0..<kept, width: d)
            added[name] = Self.rows(of: table, kept..<config.vocabSize, width: d)
        }
        copy.baseSHA256 = TensorDigest.canonical(base)
        copy.addedRows = TensorGroup(tensors: added)
        return copy
    }

    /// Combines this adapter-only checkpoint with its base: the base's config, tokenizer
    /// and weights, and everything else from this checkpoint.
    /// Throws `wrongBase` when the base's canonical weights digest is not `baseSHA256`.
    public func attaching(to base: Checkpoint, source: String = "adapter checkpoint") throws(CheckpointError) -> Checkpoint {
        guard let expected = baseSHA256 else {
            throw .invalidAttribute(file: source, object: "/", attribute: "base_weights_sha256", reason: "is missing: not an adapter-only checkpoint")
        }
        let found = base.weightsSHA256
        guard found == expected else { throw .wrongBase(file: source, expected: expected, found: found) }
        let added = addedRows?.tensors ?? [:]
        var baseConfig = config
        baseConfig.vocabSize = base.config.vocabSize
        guard base.config == baseConfig, added.isEmpty ? config.vocabSize == base.config.vocabSize : config.vocabSize > base.config.vocabSize else {
            throw .invalidConfig(file: source, reason: "differs from the base's config")
        }
        var merged = self
        merged.weights = base.weights
        let d = config.hiddenSize, extra = config.vocabSize - base.config.vocabSize
        for name in ParameterLayout(config: config).vocabularyTables where extra > 0 {
            guard let rows = added[name], rows.shape == [extra, d], let table = base.weights[name] else {
                throw .invalidConfig(file: source, reason: "added_rows/\(name) is missing or not of shape [\(extra), \(d)]")
            }
            merged.weights[name] = Self.appending(rows, to: table, width: d)
        }
        merged.baseSHA256 = nil
        merged.addedRows = nil
        if merged.tokenizerJSON == nil { merged.tokenizerJSON = base.tokenizerJSON }
        if merged.chatTemplate == nil { merged.chatTemplate = base.chatTemplate }
        return merged
    }

    /// The stored tokenizer, carrying the stored chat template; nil without a tokenizer.
    /// `source` names the checkpoint in errors.
    public func tokenizer(source: String) throws(TokenizerError) -> Tokenizer? {
        guard let tokenizerJSON else { return nil }
        return try Tokenizer(data: tokenizerJSON, source: source + " (tokenizer.json)", chatTemplate: chatTemplate)
    }

    /// Rows `range` of a `[n, width]` table, copied.
    private static func rows(of table: Tensor, _ range: Range<Int>, width: Int) -> Tensor {
        let out = Tensor(zeros: [range.count, width])
        out.data.update(from: table.data + range.lowerBound * width, count: range.count * width)
        return out
    }

    /// `table` `[n, width]` with `rows` `[k, width]` below it.
    private static func appending(_ rows: Tensor, to table: Tensor, width: Int) -> Tensor {
        let out = Tensor(zeros: [table.shape[0] + rows.shape[0], width])
        out.data.update(from: table.data, count: table.count)
        (out.data + table.count).update(from: rows.data, count: rows.count)
        return out
    }

    /// Checks that a name can be an HDF5 link name.
    static func checkName(_ name: String) throws(CheckpointError) {
        if name.isEmpty || name == "." || name.contains("/") { throw .invalidName(name: name) }
    }
}

/// Bounds applied while reading a checkpoint, so a hostile file gets an error instead of
/// exhausting memory.
public struct CheckpointReadOptions: Sendable {
    /// Verify each dataset's `sha256` attribute (on by default).
    public var verifyChecksums = true
    /// Largest element count of one tensor.
    public var maxTensorElements: Int
    /// Largest element count of all tensors together.
    public var maxTotalElements: Int

    /// Defaults: all tensors together may use at most half of physical memory.
    public init() {
        let half = Int(min(ProcessInfo.processInfo.physicalMemory / 2, UInt64(Int.max))) / 4
        maxTotalElements = half
        maxTensorElements = half
    }
}
