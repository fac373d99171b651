import Models

/// The guard's decisions for one threshold, apart from decoding (SA-ESS steps 4–5): which
/// check is due after each generated token, which tokens it sees, and where the refusal
/// goes in. `GuardedDecoder` drives one policy while it decodes; guard calibration drives
/// one per candidate threshold over a single answer, because checks only read.
struct GuardPolicy {
    /// A check as recorded, and the generated-token index where the refusal goes in when it does.
    struct Decision {
        var check: SignalCheck
        var insertAt: Int?
    }

    private enum State {
        case benign
        case suspect(since: Int, count: Int)
        case refusedAtStart(prefixEnd: Int, checked: Bool)
        case refused
    }

    let options: GuardOptions
    /// P(malicious) at or above which a check is malicious.
    let threshold: Float
    private var state = State.benign

    init(options: GuardOptions, threshold: Float) {
        self.options = options
        self.threshold = threshold
    }

    /// The query's own classification (step 0): malicious forces the refusal at once, when
    /// the answer has any room.
    func start(pMalicious p: Float, budget: Int) -> Decision {
        let refuse = p >= threshold && budget > 0
        return Decision(check: SignalCheck(step: 0, pMalicious: p, window: SignalWindow(query: true, from: 0, to: 0),
                                           action: refuse ? .refusalInserted : .none),
                        insertAt: refuse ? 0 : nil)
    }

    /// After the refusal was forced at the start: it ends at generated token `prefixEnd`,
    /// and one check over the query and the next r1 tokens is recorded (a refusal is never undone).
    mutating func refusedAtStart(prefixEnd: Int) {
        state = .refusedAtStart(prefixEnd: prefixEnd, checked: false)
    }

    /// The check due when `step` ≥ 1 tokens have been generated, if any; `probe` classifies a window.
    /// While benign, checks follow the schedule over the latest r2 tokens; a benign → malicious
    /// switch at step t starts confirming checks at every step over [t − r2, t + r3]; τ
    /// consecutive malicious checks (or a malicious one once that window is full) insert the
    /// refusal at t.
    mutating func check(step: Int, probe: (SignalWindow) throws(ModelError) -> Float) throws(ModelError) -> Decision? {
        let o = options
        let tau = max(1, o.tau)
        guard let window = window(at: step) else { return nil }
        switch state {
        case .benign:
            let p = try probe(window)
            guard p >= threshold else { return Decision(check: SignalCheck(step: step, pMalicious: p, window: window, action: .none)) }
            if tau == 1 {
                state = .refused
                return Decision(check: SignalCheck(step: step, pMalicious: p, window: window, action: .refusalInserted), insertAt: step)
            }
            state = .suspect(since: step, count: 1)
            return Decision(check: SignalCheck(step: step, pMalicious: p, window: window, action: .suspect))
        case let .suspect(since, count):
            let p = try probe(window)
            let windowFull = step >= since + max(0, o.r3)
            if p >= threshold && (count + 1 >= tau || windowFull) {
                state = .refused
                return Decision(check: SignalCheck(step: step, pMalicious: p, window: window, action: .refusalInserted), insertAt: since)
            }
            if p >= threshold {
                state = .suspect(since: since, count: count + 1)
                return Decision(check: SignalCheck(step: step, pMalicious: p, window: window, action: .suspect))
            }
            state = .benign
            return Decision(check: SignalCheck(step: step, pMalicious: p, window: window, action: .cleared))
        case let .refusedAtStart(prefixEnd, _):
            state = .refusedAtStart(prefixEnd: prefixEnd, checked: true)
            return Decision(check: SignalCheck(step: step, pMalicious: try probe(window), window: window, action: .none))
        case .refused:
            return nil
        }
    }

    /// The window the check due at `step` classifies, or nil when none is due; what a
    /// batched decoder probes for every sequence before it runs the checks.
    func window(at step: Int) -> SignalWindow? {
        let o = options
        switch state {
        case .benign where o.schedule.isCheck(step: step):
            return SignalWindow(query: false, from: max(0, step - max(1, o.r2)), to: step)
        case let .suspect(since, _):
            return SignalWindow(query: false, from: max(0, since - max(1, o.r2)), to: min(step, since + max(0, o.r3)))
        case let .refusedAtStart(prefixEnd, checked) where !checked && step == prefixEnd + max(1, o.r1):
            return SignalWindow(query: true, from: prefixEnd, to: step)
        default:
            return nil
        }
    }
}
