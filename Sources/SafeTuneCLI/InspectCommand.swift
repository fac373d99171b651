import ArgumentParser
import Checkpoints
import Foundation

/// `safetune inspect CKPT [--json]`: what a checkpoint holds, without loading its weights.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a checkpoint's config, parameter counts, adapters, unit maps, provenance and gate verdict.")

    @Argument(help: "The checkpoint (.h5).")
    var checkpoint: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let summary = try CommandFailure.guarding { try CheckpointSummary.read(from: URL(fileURLWithPath: checkpoint)) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(Self.text(summary), terminator: "")
        }
    }

    /// The human-readable report.
    static func text(_ s: CheckpointSummary) -> String {
        let c = s.config
        var out = "\(s.file)\n"
        out += "  format version \(s.formatVersion), created \(s.created), SafeTune \(s.safetuneVersion)\n"
        out += "  model: \(c.family.rawValue), \(c.numLayers) layers, hidden \(c.hiddenSize), heads \(c.numHeads)/\(c.numKVHeads) (q/kv), "
        out += "ffn \(c.intermediateSize), vocab \(c.vocabSize), context \(c.maxPositions)\n"
        if let base = s.baseSHA256 {
            out += "  adapter-only: base weights sha256 \(base)\n"
        } else {
            out += "  weights: \(s.weightParameters) parameters\n"
        }
        if let t = s.tokenizerBytes { out += "  tokenizer: \(t) bytes of tokenizer.json\n" }
        if !s.adapters.isEmpty {
            let ranks = Set(s.adapters.compactMap(\.rank)).sorted().map(String.init).joined(separator: ",")
            let targets = Set(s.adapters.compactMap(\.target)).sorted().joined(separator: ",")
            out += "  adapters: \(s.adapters.count) modules (\(targets)), rank \(ranks), \(s.adapterParameters) parameters\n"
        }
        if let counts = s.unitClassCounts {
            out += "  unit maps: \(s.unitMapModules) modules; RU \(counts[0]), UCU \(counts[1]), CU \(counts[2]), SCU \(counts[3])\n"
        }
        if s.directionBlocks > 0 { out += "  safety directions: \(s.directionBlocks) blocks (the gate's direction stage reads them)\n" }
        if s.signalParameters > 0 {
            out += "  safety signal head: \(s.signalParameters) parameters; guard threshold "
                + (s.guardThreshold.map { String(format: "%g (calibrated)", $0) } ?? "0.5 (not calibrated)") + "\n"
        }
        if let step = s.optimizerStep { out += "  optimizer state at step \(step)\n" }
        if let p = s.provenance {
            out += "  provenance: recipe sha256 \(p.recipeSHA256 ?? "-"), seed \(p.seed.map(String.init) ?? "-"), "
            if let steps = p.steps { out += "\(steps) steps, " }
            out += "\(p.dataSHA256.count) data files, parent \(p.parentSHA256 ?? "-")\n"
        }
        if let g = s.gate {
            let scores = g.scores.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            out += "  gate: \(g.verdict) (\(g.date)) \(scores)\n"
        } else {
            out += "  gate: not evaluated\n"
        }
        return out
    }
}
