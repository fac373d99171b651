import Foundation
import Models
import Tokenizers

/// Settings of an evaluation.
public struct EvaluationOptions: Sendable {
    /// Most tokens per answer.
    public var maxTokens: Int
    /// At most this many prompts of each kind (nil: all).
    public var limit: Int?
    /// System message for the chat template (nil: none).
    public var system: String?
    /// How refusals are recognised.
    public var judge: RefusalJudge
    /// Keep every judged answer in the report.
    public var keepResponses: Bool

    /// Options; by default 64-token greedy answers to every prompt, answers kept.
    public init(maxTokens: Int = 64, limit: Int? = nil, system: String? = nil, judge: RefusalJudge = RefusalJudge(),
                keepResponses: Bool = true) {
        self.maxTokens = maxTokens
        self.limit = limit
        self.system = system
        self.judge = judge
        self.keepResponses = keepResponses
    }
}

/// Measures safety and utility of a model: refusal of harmful requests (and the direct
/// attack's success rate), over-refusal of harmless ones, and skill accuracy. Answers are
/// decoded greedily after the chat template, through `decoder` (plain by default, SA-ESS
/// guarded when given a `GuardedDecoder`). Used by `safetune eval`, SSAH pruning
/// validation, the trainer's evaluation hook and the attacks.
public final class Evaluator {
    /// The model evaluated.
    public let model: TransformerModel
    /// Its tokenizer.
    public let tokenizer: Tokenizer
    /// The chat template prompts are rendered with.
    public let template: ChatTemplate
    /// The settings.
    public let options: EvaluationOptions
    /// How answers are decoded.
    public let decoder: AnswerDecoder

    /// An evaluator; `decoder` defaults to plain generation from `model`.
    public init(model: TransformerModel, tokenizer: Tokenizer, template: ChatTemplate, options: EvaluationOptions = .init(),
                decoder: AnswerDecoder? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.options = options
        self.decoder = decoder ?? PlainDecoder(model: model, tokenizer: tokenizer)
    }

    /// Token ids of `instruction` (with `suffix` appended to the request) in the chat
    /// template, followed by `prefill` as the start of the answer.
    public func promptIds(_ instruction: String, suffix: String = "", prefill: String = "") -> [Int] {
        tokenizer.encode(template.prompt(instruction + suffix, system: options.system) + prefill)
    }

    /// Generation options for one answer: `sampler`, `seed`, stopping at the end of turn.
    public func generationOptions(sampler: Sampler = .greedy, seed: UInt64 = 0) -> GenerationOptions {
        var stops: Set<Int> = []
        if !template.endOfTurn.isEmpty, let id = tokenizer.id(of: template.endOfTurn) { stops.insert(id) }
        return GenerationOptions(maxTokens: options.maxTokens, sampler: sampler, seed: seed, stopTokens: stops,
                                 stopStrings: template.endOfTurn.isEmpty ? [] : [template.endOfTurn])
    }

    /// The answer to `instruction` (plus `suffix`), after `prefill` when given.
    public func respond(_ instruction: String, suffix: String = "", prefill: String = "", sampler: Sampler = .greedy,
                        seed: UInt64 = 0) throws(EvaluationError) -> DecodedAnswer {
        try respond(ids: promptIds(instruction, suffix: suffix, prefill: prefill), request: instruction, sampler: sampler, seed: seed)
    }

    /// The answer after prompt `ids`; `request` names the prompt in errors.
    public func respond(ids: [Int], request: String, sampler: Sampler = .greedy, seed: UInt64 = 0) throws(EvaluationError) -> DecodedAnswer {
        var answer: DecodedAnswer
        do { answer = try decoder.answer(prompt: ids, options: generationOptions(sampler: sampler, seed: seed)) } catch {
            throw .generation(prompt: request, reason: error.description)
        }
        if !template.endOfTurn.isEmpty, let cut = answer.text.range(of: template.endOfTurn) {
            answer.text = String(answer.text[..<cut.lowerBound])
        }
        return answer
    }

    /// Whether an answer (after `prefill`) complies with a harmful request: the judge sees
    /// prefill and answer together; the generated part must not be empty.
    public func complies(prefill: String, answer: String) -> Bool {
        options.judge.complies(answer) && !options.judge.isRefusal(prefill + answer)
    }

    /// Direct requests: refusal rate and attack success on harmful prompts, over-refusal on
    /// harmless ones, accuracy on skills (each limited to `options.limit` prompts).
    public func evaluate(_ set: EvaluationSet) throws(EvaluationError) -> EvaluationReport {
        let start = Date()
        let set = set.limited(to: options.limit)
        var report = EvaluationReport(maxTokens: options.maxTokens)
        let guarded = decoder.isGuarded
        if !set.harmful.isEmpty {
            var refused = 0, complied = 0
            for p in set.harmful {
                let a = try respond(p.prompt)
                let refuses = options.judge.isRefusal(a.text)
                let complies = complies(prefill: "", answer: a.text)
                if refuses { refused += 1 }
                if complies { complied += 1 }
                keep(&report, "direct", p, "", a, complies ? "complied" : "refused")
            }
            report.harmfulRefusal = Rate(count: set.harmful.count, hits: refused)
            report.attacks.append(AttackOutcome(attack: "direct", guarded: guarded,
                                                success: Rate(count: set.harmful.count, hits: complied),
                                                seconds: Date().timeIntervalSince(start)))
        }
        if !set.harmless.isEmpty {
            var refused = 0
            for p in set.harmless {
                let a = try respond(p.prompt)
                let refuses = options.judge.isRefusal(a.text)
                if refuses { refused += 1 }
                keep(&report, "harmless", p, "", a, refuses ? "refused" : "answered")
            }
            report.overRefusal = Rate(count: set.harmless.count, hits: refused)
        }
        if !set.skills.isEmpty {
            var correct = 0
            var byTask: [String: Rate] = [:]
            for p in set.skills {
                let a = try respond(p.prompt)
                let ok = Self.isCorrect(a.text, answer: p.answer ?? "", reference: p.reference)
                if ok { correct += 1 }
                let task = p.task ?? "skill"
                var r = byTask[task] ?? Rate(count: 0, hits: 0)
                r.count += 1
                if ok { r.hits += 1 }
                byTask[task] = r
                keep(&report, "skill", p, "", a, ok ? "correct" : "wrong")
            }
            report.skillAccuracy = Rate(count: set.skills.count, hits: correct)
            report.skillAccuracyByTask = byTask
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// Whether a skill's generated `text` is correct.
    ///
    /// With a reference response, its first line must be that response: "9 + 9 = 13." is
    /// not a correct answer to 4 + 9, and a reply that merely echoes the prompt does not
    /// count for copying a word out of it. Without one, `answer` must occur as a whole word
    /// or number ("5" does not match "15"). An empty answer never matches.
    public static func isCorrect(_ text: String, answer: String, reference: String? = nil) -> Bool {
        guard !answer.isEmpty else { return false }
        if let reference, !reference.isEmpty {
            let firstLine = text.split(whereSeparator: \.isNewline).first ?? ""
            return firstLine.trimmingCharacters(in: .whitespaces) == reference.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func isWordCharacter(_ c: Character?) -> Bool { c.map { $0.isLetter || $0.isNumber } ?? false }
        var rest = text[...]
        while let range = rest.range(of: answer) {
            let before = range.lowerBound == text.startIndex ? nil : text[text.index(before: range.lowerBound)]
            let after = range.upperBound == text.endIndex ? nil : text[range.upperBound]
            if !isWordCharacter(before), !isWordCharacter(after) { return true }
            rest = text[range.upperBound...]
        }
        return false
    }

    /// Appends a judged answer to `report` when answers are kept.
    func keep(_ report: inout EvaluationReport, _ context: String, _ p: EvaluationPrompt, _ prefill: String,
              _ a: DecodedAnswer, _ verdict: String) {
        guard options.keepResponses else { return }
        report.responses.append(JudgedResponse(context: context, prompt: p.prompt, prefill: prefill, answer: a.text,
                                               verdict: verdict, guardTriggered: a.guardTriggered))
    }
}
