/// Settings of SA-ESS guarded decoding (defaults from the published code: r1 5, r2 15,
/// r3 10; the threshold is the head's calibrated one, else the published 0.5).
public struct GuardOptions: Sendable, Equatable {
    /// Generated tokens the CLS sees, with the query, after a malicious first prediction.
    public var r1: Int
    /// Latest generated tokens the CLS sees while the answer is benign.
    public var r2: Int
    /// Tokens after a benign → malicious switch the confirming checks may see.
    public var r3: Int
    /// P(malicious) at or above which a check is malicious; nil: the signal's calibrated
    /// threshold (`SafetySignal.calibration`), else `uncalibratedThreshold`.
    public var threshold: Float?
    /// When checks run.
    public var schedule: CheckSchedule
    /// Consecutive malicious checks (the switch included) that insert the refusal mid-answer.
    public var tau: Int
    /// Text forced where the answer turns malicious.
    public var refusalPrefix: String
    /// Whether checks and insertions happen at all (false: the CLS layout only, the
    /// unguarded reference).
    public var enabled: Bool

    /// Options; the defaults use the annealing schedule and τ = 2.
    public init(r1: Int = 5, r2: Int = 15, r3: Int = 10, threshold: Float? = nil, schedule: CheckSchedule = .defaultAnnealing,
                tau: Int = 2, refusalPrefix: String = "Sorry, I cannot fulfill your request because", enabled: Bool = true) {
        self.r1 = r1
        self.r2 = r2
        self.r3 = r3
        self.threshold = threshold
        self.schedule = schedule
        self.tau = tau
        self.refusalPrefix = refusalPrefix
        self.enabled = enabled
    }

    /// The published code's threshold, for a head that was never calibrated.
    public static let uncalibratedThreshold: Float = 0.5
}

/// The tokens one classification saw: optionally the query, and generated tokens `from..<to`.
public struct SignalWindow: Sendable, Hashable, Codable {
    /// Whether the prompt tokens were visible.
    public var query: Bool
    /// First generated token visible.
    public var from: Int
    /// One past the last generated token visible.
    public var to: Int

    /// A window.
    public init(query: Bool, from: Int, to: Int) {
        self.query = query
        self.from = from
        self.to = to
    }
}

/// One classification during guarded decoding.
public struct SignalCheck: Sendable, Equatable, Codable {
    /// What the check led to.
    public enum Action: String, Sendable, Codable {
        /// Nothing changed.
        case none
        /// A benign → malicious switch: confirming checks follow.
        case suspect
        /// The refusal prefix was inserted (after a rollback to the switch, mid-answer).
        case refusalInserted = "refusal_inserted"
        /// A suspicion ended with a benign check.
        case cleared
    }

    /// Generated tokens when the check ran.
    public var step: Int
    /// P(malicious).
    public var pMalicious: Float
    /// What the CLS saw.
    public var window: SignalWindow
    /// The consequence.
    public var action: Action

    /// A check record.
    public init(step: Int, pMalicious: Float, window: SignalWindow, action: Action) {
        self.step = step
        self.pMalicious = pMalicious
        self.window = window
        self.action = action
    }
}
