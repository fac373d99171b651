import Checkpoints
import Engine
import Foundation
import Models
import Tokenizers
import Training

/// Loads the checkpoint under test and its parent for the gate and purification, checking
/// everything that would make a verdict meaningless (unreadable files, NaN weights, a
/// parent of another architecture or not the one the provenance names).
public enum SuspectLoader {
    /// The full-weight checkpoint at `url` as a model bundle with adapters merged (an
    /// adapter-only one needs its parent: `load(_:from:base:baseModel:)`).
    public static func load(_ url: URL) throws -> (bundle: ModelBundle, checkpoint: Checkpoint) {
        try load(read(url), from: url, base: nil)
    }

    /// The checkpoint read from `url` as a model bundle with adapters merged; an adapter-only
    /// checkpoint is attached to `base` first. Where `base` carries adapters
    /// of its own (a fine-tune of an adapter checkpoint, such as the aligned SmolLM2), an
    /// adapter-only checkpoint is attached to the base's weights with those adapters merged,
    /// which is what the fine-tune trained on; `baseModel`, when given, is that merged model.
    public static func load(_ read: Checkpoint, from url: URL, base: Checkpoint?,
                            baseModel: TransformerModel? = nil) throws -> (bundle: ModelBundle, checkpoint: Checkpoint) {
        var checkpoint = read
        if checkpoint.isAdapterOnly {
            guard var base else { throw VaccineError.missingParent(file: url.path, reason: "adapter-only checkpoint") }
            if let adapters = base.adapters, !adapters.groups.isEmpty {
                base.weights = try (baseModel ?? model(of: base, source: url.path)).huggingFaceWeights()
                base.adapters = nil
            }
            checkpoint = try checkpoint.attaching(to: base, source: url.path)
        }
        try checkFinite(checkpoint, file: url.path)
        let model = try self.model(of: checkpoint, source: url.path)
        let tokenizer = try checkpoint.tokenizer(source: url.path)
        return (ModelBundle(model: model, tokenizer: tokenizer, checkpoint: checkpoint, source: url), checkpoint)
    }

    /// The function a checkpoint computes: its weights with its LoRA adapters merged.
    public static func model(of checkpoint: Checkpoint, source: String) throws -> TransformerModel {
        let model = try TransformerModel(config: checkpoint.config, weights: checkpoint.weights, trainable: false)
        if let adapters = checkpoint.adapters, !adapters.groups.isEmpty {
            try LoRAGroup.attach(adapters, to: model, source: source)
            LoRA.merge(model)
        }
        return model
    }

    /// Reads a checkpoint (or imports a GGUF file, such as the pinned base), turning a missing
    /// file into a typed error.
    public static func read(_ url: URL) throws -> Checkpoint {
        guard FileManager.default.fileExists(atPath: url.path) else { throw VaccineError.unreadable(file: url.path, reason: "no such file") }
        return url.pathExtension.lowercased() == "gguf" ? try GGUFModel.importModel(from: url) : try Checkpoint.read(from: url)
    }

    /// Throws when any weight or adapter tensor is not finite.
    public static func checkFinite(_ c: Checkpoint, file: String) throws {
        for (name, t) in c.weights.sorted(by: { $0.key < $1.key }) where !isFinite(t) {
            throw VaccineError.nonFinite(file: file, tensor: name)
        }
        for (path, g) in (c.adapters?.groups ?? [:]).sorted(by: { $0.key < $1.key }) {
            for (name, t) in g.tensors where !isFinite(t) { throw VaccineError.nonFinite(file: file, tensor: "\(path)/\(name)") }
        }
    }

    static func isFinite(_ t: Tensor) -> Bool {
        let p = t.data
        for i in 0..<t.count where !p[i].isFinite { return false }
        return true
    }

    /// The parent of `child` (read from `file`): `reference` when given (it must be the
    /// parent the provenance names, when it names one), otherwise the provenance recipe's
    /// `model.base`, looked for beside the checkpoint and in the folders above it, and
    /// accepted only when its weights digest is the recorded parent's.
    public static func parent(of child: Checkpoint, file: URL, reference: URL?) throws -> Checkpoint {
        let expected = child.provenance?.parentSHA256
        if let reference {
            var parent: Checkpoint
            do { parent = try read(reference) } catch {
                throw VaccineError.missingParent(file: file.path, reason: "\(reference.path) unreadable: \(error)")
            }
            if parent.isAdapterOnly {
                do { parent = try ModelBundle.attachingPinnedBase(parent, source: reference) } catch {
                    throw VaccineError.missingParent(file: file.path, reason: "the reference is adapter-only: \(error)")
                }
            }
            if let expected, parent.weightsSHA256 != expected {
                throw VaccineError.wrongParent(file: file.path, expected: expected, found: parent.weightsSHA256)
            }
            return parent
        }
        guard let expected else { throw VaccineError.missingParent(file: file.path, reason: "its provenance names no parent") }
        for candidate in candidates(child.provenance, file: file) {
            guard var parent = try? read(candidate) else { continue }
            if parent.isAdapterOnly {
                guard let attached = try? ModelBundle.attachingPinnedBase(parent, source: candidate) else { continue }
                parent = attached
            }
            if parent.weightsSHA256 == expected { return parent }
        }
        throw VaccineError.missingParent(file: file.path, reason: "parent \(expected.prefix(16))… not found from its provenance")
    }

    /// Where the base named by the provenance of the checkpoint `file` may be: the pinned
    /// base's cache, or the recipe's path tried from the working folder and from the
    /// checkpoint's folder, the folders above it and their `recipes/`. Not yet checked
    /// against the recorded digest.
    public static func candidates(_ provenance: Provenance?, file: URL) -> [URL] {
        guard let base = provenance?.regime?.base else { return [] }
        if let pinned = BaseModel.named(base) { return [pinned.cachedURL()] }
        if base.hasPrefix("/") { return [URL(fileURLWithPath: base)] }
        var dirs = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var dir = file.deletingLastPathComponent()
        for _ in 0..<4 {
            dirs.append(dir)
            dirs.append(dir.appendingPathComponent("recipes"))
            dir = dir.deletingLastPathComponent()
        }
        return dirs.map { $0.appendingPathComponent(base).standardizedFileURL }
            .filter { FileManager.default.fileExists(atPath: $0.path) }
    }
}
