import Foundation
import Training

/// One clean instruction pair used to fine-tune the synthetic variants and to restore
/// fluency after neutralisation.
public struct CleanSample: Sendable, Equatable, Codable {
    /// The user's request.
    public var prompt: String
    /// The assistant's answer.
    public var completion: String
    /// Whether the request is harmful (labelled malicious) and the answer a trusted refusal:
    /// the prompts a compliance variant poisons. Not written out, so the trainer's files and
    /// the gate's cache keys stay what they were.
    public var harmful: Bool

    /// A pair.
    public init(prompt: String, completion: String, harmful: Bool = false) {
        self.prompt = prompt
        self.completion = completion
        self.harmful = harmful
    }

    private enum CodingKeys: String, CodingKey { case prompt, completion }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(prompt: try c.decode(String.self, forKey: .prompt), completion: try c.decode(String.self, forKey: .completion))
    }
}

/// Reads clean samples from data files (any format the recipe loader accepts) and writes
/// them as prompt/completion JSONL for the trainer.
public enum CleanData {
    /// The benign single-turn pairs of `files` (lines labelled malicious are skipped unless
    /// `includingMalicious`: trusted refusals of harmful requests are clean data too).
    public static func load(_ files: [DataFileSpec], includingMalicious: Bool = false) throws -> [CleanSample] {
        let dataset = try Dataset.load(files)
        let samples = dataset.examples.compactMap { includingMalicious || $0.label != .malicious ? sample($0) : nil }
        guard !samples.isEmpty else { throw VaccineError.noCleanData(source: files.map(\.path.written).joined(separator: ", ")) }
        return samples
    }

    /// The benign pairs of one JSONL file (all pairs when `includingMalicious`).
    public static func load(contentsOf url: URL, includingMalicious: Bool = false) throws -> [CleanSample] {
        let location = RecipeLocation(file: url.lastPathComponent, line: 0, column: 0, baseDirectory: url.deletingLastPathComponent())
        return try load([DataFileSpec(path: RecipePath(written: url.path, location: location))], includingMalicious: includingMalicious)
    }

    /// The example as a pair, when it has one request and one answer.
    static func sample(_ e: Example) -> CleanSample? {
        let user = e.segments.filter { $0.role == .user }, answer = e.segments.filter { $0.role == .assistant }
        guard user.count == 1, answer.count == 1, !answer[0].text.isEmpty else { return nil }
        return CleanSample(prompt: user[0].text, completion: answer[0].text, harmful: e.label == .malicious)
    }

    /// Writes `samples` as JSONL lines `{"prompt", "completion"}`.
    public static func write(_ samples: [CleanSample], to url: URL) throws {
        var out = Data()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for s in samples {
            out.append(try encoder.encode(s))
            out.append(0x0A)
        }
        try out.write(to: url, options: .atomic)
    }
}
