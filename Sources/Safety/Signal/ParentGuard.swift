import Checkpoints
import Foundation
import Models

extension GuardedDecoder {
    /// The guard of the model `checkpoint` (read from `file`) was fine-tuned from, for
    /// `GuardedDecoder.parent`: its parent found as the gate finds it (the provenance's base,
    /// accepted only with the recorded digest). Nil when the provenance names no parent, the
    /// parent is not found, or it has no calibrated safety signal (a guard it shipped with).
    public static func parentGuard(of checkpoint: Checkpoint, file: URL, options: GuardOptions) throws -> GuardedDecoder? {
        guard checkpoint.provenance?.parentSHA256 != nil else { return nil }
        // Only a checkpoint with a signal can guard: the rest (the pinned GGUF base, say) are
        // passed over before being read whole.
        let signalled = SuspectLoader.candidates(checkpoint.provenance, file: file).contains {
            $0.pathExtension.lowercased() != "gguf" && ((try? CheckpointSummary.read(from: $0))?.signalParameters ?? 0) > 0
        }
        guard signalled, let parent = try? SuspectLoader.parent(of: checkpoint, file: file, reference: nil) else { return nil }
        return try calibratedGuard(of: parent, source: file.path, options: options)
    }

    /// The calibrated guard of the checkpoint at `file` (an adapter-only one attached to its
    /// pinned base), or nil as `calibratedGuard(of:source:options:)` says.
    public static func calibratedGuard(file: URL, options: GuardOptions) throws -> GuardedDecoder? {
        var checkpoint = try SuspectLoader.read(file)
        guard checkpoint.signal != nil else { return nil }
        if checkpoint.isAdapterOnly { checkpoint = try ModelBundle.attachingPinnedBase(checkpoint, source: file) }
        return try calibratedGuard(of: checkpoint, source: file.path, options: options)
    }

    /// The guard of `checkpoint` itself (its adapters merged into a model of its own) with its
    /// calibrated threshold (`options`' threshold does not apply), or nil when it has no safety
    /// signal or the signal was never calibrated (it was not meant to guard).
    public static func calibratedGuard(of checkpoint: Checkpoint, source: String, options: GuardOptions) throws -> GuardedDecoder? {
        guard let group = checkpoint.signal, let tokenizer = try checkpoint.tokenizer(source: source) else { return nil }
        let signal = try SafetySignal(group: group)
        guard signal.calibration != nil else { return nil }
        var own = options
        own.threshold = nil
        return try GuardedDecoder(model: try SuspectLoader.model(of: checkpoint, source: source), tokenizer: tokenizer, signal: signal,
                                  options: own)
    }
}
