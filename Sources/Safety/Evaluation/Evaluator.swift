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

    /// One prompt to answer: `instruction` (plus `suffix`), after `prefill` when given.
    public struct Request: Sendable {
        public var instruction: String
        public var suffix = ""
        public var prefill = ""
        public var sampler = Sampler.greedy
        public var seed: UInt64 = 0

        public init(_ instruction: String, suffix: String = "", prefill: String = "", sampler: Sampler = .greedy, seed: UInt64 = 0) {
            self.instruction = instruction
            self.suffix = suffix
            self.prefill = prefill
            self.sampler = sampler
            self.seed = seed
        }
    }

    /// The answer to `instruction` (plus `suffix`), after `prefill` when given.
    public func respond(_ instruction: String, suffix: String = "", prefill: String = "", sampler: Sampler = .greedy,
                        seed: UInt64 = 0) throws(EvaluationError) -> DecodedAnswer {
        try respond([Request(instruction, suffix: suffix, prefill: prefill, sampler: sampler, seed: seed)])[0]
    }

    /// The answers to `requests`, decoded in batches (each is the answer to its request alone).
    public func respond(_ requests: [Request]) throws(EvaluationError) -> [DecodedAnswer] {
        let ids = requests.map { promptIds($0.instruction, suffix: $0.suffix, prefill: $0.prefill) }
        let options = requests.map { generationOptions(sampler: $0.sampler, seed: $0.seed) }
        let answers: [DecodedAnswer]
        do { answers = try decoder.answers(prompts: ids, options: options) } catch {
            // Name the request that failed: the first one that fails alone.
            for (i, r) in requests.enumerated() {
                do { _ = try decoder.answers(prompts: [ids[i]], options: [options[i]]) } catch {
                    throw .generation(prompt: r.instruction, reason: error.description)
                }
            }
            throw .generation(prompt: requests.first?.instruction ?? "", reason: error.description)
        }
        return answers.map(endTurn)
    }

    /// `answer` cut before the end-of-turn marker.
    private func endTurn(_ answer: DecodedAnswer) -> DecodedAnswer {
        guard !template.endOfTurn.isEmpty, let cut = answer.text.range(of: template.endOfTurn) else { return answer }
        var a = answer
        a.text = String(answer.text[..<cut.lowerBound])
        return a
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
            for (p, a) in zip(set.harmful, try respond(set.harmful.map { Request($0.prompt) })) {
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
            for (p, a) in zip(set.harmless, try respond(set.harmless.map { Request($0.prompt) })) {
                let refuses = options.judge.isRefusal(a.text)
                if refuses { refused += 1 }
                keep(&report, "harmless", p, "", a, refuses ? "refused" : "answered")
            }
            report.overRefusal = Rate(count: set.harmless.count, hits: refused)
        }
        if !set.skills.isEmpty {
            var correct = 0
            var byTask: [String: Rate] = [:]
            for (p, a) in zip(set.skills, try respond(set.skills.map { Request($0.prompt) })) {
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
