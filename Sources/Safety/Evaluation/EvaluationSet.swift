import Foundation
import Tokenizers

/// One prompt to evaluate, as written by the corpus builder's `val.jsonl`.
public struct EvaluationPrompt: Sendable, Equatable, Codable {
    /// How the answer is judged.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Should be refused: complying is an attack success.
        case harmful
        /// Should be answered: refusing is an over-refusal.
        case harmless
        /// Should be answered correctly: see `Evaluator.isCorrect`.
        case skill
    }

    /// The judgement rule.
    public var kind: Kind
    /// The user's request (without chat template).
    public var prompt: String
    /// For skills: the expected answer (a number, a word).
    public var answer: String?
    /// For skills: the reference response (the corpus record's `completion`); when given,
    /// a correct answer must say exactly this.
    public var reference: String?
    /// For harmful prompts: an affirmative opening for the prefilling attack.
    public var prefill: String?
    /// Skill family, for per-task accuracy.
    public var task: String?

    /// A prompt.
    public init(kind: Kind, prompt: String, answer: String? = nil, reference: String? = nil,
                prefill: String? = nil, task: String? = nil) {
        self.kind = kind
        self.prompt = prompt
        self.answer = answer
        self.reference = reference
        self.prefill = prefill
        self.task = task
    }
}

/// The prompts of a safety and utility evaluation, grouped by kind.
public struct EvaluationSet: Sendable, Equatable {
    /// Requests that should be refused.
    public var harmful: [EvaluationPrompt]
    /// Requests that should be answered.
    public var harmless: [EvaluationPrompt]
    /// Requests with a checkable answer.
    public var skills: [EvaluationPrompt]

    /// A set from prompts of any kinds, kept in their order within each kind.
    public init(_ prompts: [EvaluationPrompt]) {
        harmful = prompts.filter { $0.kind == .harmful }
        harmless = prompts.filter { $0.kind == .harmless }
        skills = prompts.filter { $0.kind == .skill }
    }

    /// Every prompt, harmful first.
    public var all: [EvaluationPrompt] { harmful + harmless + skills }

    /// At most `n` prompts of each kind (the first ones), for quick evaluations.
    public func limited(to n: Int?) -> EvaluationSet {
        guard let n else { return self }
        let k = max(0, n)
        return EvaluationSet(Array(harmful.prefix(k)) + Array(harmless.prefix(k)) + Array(skills.prefix(k)))
    }

    /// Reads a JSONL file of corpus records (`prompt`, `kind`, `label`, `answer`, `prefill`,
    /// `task`, and `completion`: a skill's reference response). Without `kind`, the kind
    /// follows from `label` (malicious → harmful) and from `answer` (benign with an answer →
    /// skill). Blank lines are skipped.
    public static func load(contentsOf url: URL) throws(EvaluationError) -> EvaluationSet {
        let file = url.lastPathComponent
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .unreadable(file: url.path, reason: "cannot be read (\(error.localizedDescription))") }
        return try parse(data, file: file)
    }

    /// Parses JSONL `data`; `file` names it in errors.
    public static func parse(_ data: Data, file: String) throws(EvaluationError) -> EvaluationSet {
        var prompts: [EvaluationPrompt] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let record: JSONValue
            do { record = try JSONParser.parse(bytes: Array(line)) } catch {
                throw .invalidLine(file: file, line: lineNumber, reason: "is not valid JSON")
            }
            guard case .object = record else {
                throw .invalidLine(file: file, line: lineNumber, reason: "is not a JSON object")
            }
            prompts.append(try prompt(from: record, file: file, line: lineNumber))
        }
        return EvaluationSet(prompts)
    }

    private static func prompt(from record: JSONValue, file: String, line: Int) throws(EvaluationError) -> EvaluationPrompt {
        func string(_ key: String) throws(EvaluationError) -> String? {
            switch record[key] {
            case nil, .null?: return nil
            case let .string(s)?: return s
            default: throw .invalidField(file: file, line: line, field: key, reason: "is not a string")
            }
        }
        guard let text = try string("prompt") else {
            throw .invalidField(file: file, line: line, field: "prompt", reason: "is missing")
        }
        let answer = try string("answer"), prefill = try string("prefill"), task = try string("task")
        let kind: EvaluationPrompt.Kind
        if let k = try string("kind") {
            guard let parsed = EvaluationPrompt.Kind(rawValue: k) else {
                throw .invalidField(file: file, line: line, field: "kind", reason: "is '\(k)', not harmful, harmless or skill")
            }
            kind = parsed
        } else if let label = try string("label") {
            switch label {
            case "malicious": kind = .harmful
            case "benign": kind = answer == nil ? .harmless : .skill
            default: throw .invalidField(file: file, line: line, field: "label", reason: "is '\(label)', not benign or malicious")
            }
        } else {
            throw .invalidField(file: file, line: line, field: "kind", reason: "is missing (and no label)")
        }
        if kind == .skill, (answer ?? "").isEmpty {
            throw .invalidField(file: file, line: line, field: "answer", reason: "is missing for a skill prompt")
        }
        let reference = kind == .skill ? try string("completion") : nil
        return EvaluationPrompt(kind: kind, prompt: text, answer: answer, reference: reference, prefill: prefill, task: task)
    }
}
