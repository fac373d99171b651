/// A count of successes out of a number of trials.
public struct Rate: Sendable, Equatable, Codable {
    /// Trials.
    public var count: Int
    /// Trials that hit (complied, refused, answered correctly: see the field's name).
    public var hits: Int

    /// A rate of `hits` out of `count`.
    public init(count: Int, hits: Int) {
        self.count = count
        self.hits = hits
    }

    /// hits / count, 0 for no trials.
    public var value: Double { count == 0 ? 0 : Double(hits) / Double(count) }

    enum CodingKeys: String, CodingKey { case count, hits, rate }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decode(Int.self, forKey: .count)
        hits = try c.decode(Int.self, forKey: .hits)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(hits, forKey: .hits)
        try c.encode(value, forKey: .rate)
    }
}

/// The outcome of one attack over the harmful prompts.
public struct AttackOutcome: Sendable, Equatable, Codable {
    /// `direct`, `prefill`, `decoding`, `suffix-random`, `suffix-search`.
    public var attack: String
    /// Whether guarded decoding (the SA-ESS signal) was on.
    public var guarded: Bool
    /// Attack success rate: hits are prompts where some attempt complied.
    public var success: Rate
    /// Wall-clock seconds the attack took.
    public var seconds: Double

    /// An outcome.
    public init(attack: String, guarded: Bool, success: Rate, seconds: Double) {
        self.attack = attack
        self.guarded = guarded
        self.success = success
        self.seconds = seconds
    }
}

/// One judged answer, kept for inspection.
public struct JudgedResponse: Sendable, Equatable, Codable {
    /// What was evaluated (`direct`, `harmless`, `skill`, or an attack name).
    public var context: String
    /// The user request.
    public var prompt: String
    /// Text forced at the start of the answer (prefilling), empty otherwise.
    public var prefill: String
    /// The generated answer (after the prefill).
    public var answer: String
    /// The judge's verdict: refused (harmful/harmless) or correct (skills).
    public var verdict: String
    /// Whether guarded decoding inserted its refusal prefix.
    public var guardTriggered: Bool

    /// A record.
    public init(context: String, prompt: String, prefill: String, answer: String, verdict: String, guardTriggered: Bool) {
        self.context = context
        self.prompt = prompt
        self.prefill = prefill
        self.answer = answer
        self.verdict = verdict
        self.guardTriggered = guardTriggered
    }
}

/// Safety and utility numbers of one model on one evaluation set.
public struct EvaluationReport: Sendable, Equatable, Codable {
    /// Harmful prompts answered with a refusal (hits = refusals), direct request.
    public var harmfulRefusal: Rate?
    /// Harmless prompts refused (hits = refusals): over-refusal.
    public var overRefusal: Rate?
    /// Over-refusal with SA-ESS guarded decoding, when measured.
    public var overRefusalGuarded: Rate?
    /// Skill prompts answered correctly (`Evaluator.isCorrect`).
    public var skillAccuracy: Rate?
    /// Skill accuracy per task family.
    public var skillAccuracyByTask: [String: Rate]
    /// Attack success rates, one per attack and guard setting.
    public var attacks: [AttackOutcome]
    /// Judged answers (when kept).
    public var responses: [JudgedResponse]
    /// Token budget per answer.
    public var maxTokens: Int
    /// Total wall-clock seconds.
    public var seconds: Double
    /// Guarded decoding's cost per token against unguarded decoding, when timed.
    public var guardOverhead: GuardOverhead?
    /// The P(malicious) threshold guarded decoding used, and whether it was the head's
    /// calibrated one, when the guard ran.
    public var guardThreshold: Double?
    public var guardThresholdCalibrated: Bool?
    /// Whether the guard read the parent's head too (`GuardedDecoder.parent`), when the guard ran.
    public var parentGuard: Bool?
    /// When the calibrated threshold was used by a guard that checks otherwise than the one
    /// calibrated: what each does ("calibrated with …; this run checks with …").
    public var guardSettingsMismatch: String?

    /// An empty report for answers of up to `maxTokens` tokens.
    public init(maxTokens: Int) {
        harmfulRefusal = nil
        overRefusal = nil
        overRefusalGuarded = nil
        skillAccuracy = nil
        skillAccuracyByTask = [:]
        attacks = []
        responses = []
        self.maxTokens = maxTokens
        seconds = 0
    }

    /// The success rate of `attack` with the guard `guarded`, if it was run.
    public func attackSuccess(_ attack: String, guarded: Bool = false) -> Rate? {
        attacks.first { $0.attack == attack && $0.guarded == guarded }?.success
    }

    /// This report with `other`'s numbers added where this one has none, and all attacks and responses.
    public func merged(with other: EvaluationReport) -> EvaluationReport {
        var out = self
        out.harmfulRefusal = harmfulRefusal ?? other.harmfulRefusal
        out.overRefusal = overRefusal ?? other.overRefusal
        out.overRefusalGuarded = overRefusalGuarded ?? other.overRefusalGuarded
        out.skillAccuracy = skillAccuracy ?? other.skillAccuracy
        out.skillAccuracyByTask.merge(other.skillAccuracyByTask) { a, _ in a }
        out.attacks += other.attacks
        out.responses += other.responses
        out.seconds += other.seconds
        out.guardOverhead = guardOverhead ?? other.guardOverhead
        out.guardThreshold = guardThreshold ?? other.guardThreshold
        out.guardThresholdCalibrated = guardThresholdCalibrated ?? other.guardThresholdCalibrated
        out.parentGuard = parentGuard ?? other.parentGuard
        out.guardSettingsMismatch = guardSettingsMismatch ?? other.guardSettingsMismatch
        return out
    }
}
