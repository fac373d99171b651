/// One example of SafeTune's instruction corpus, written as a JSONL line in the
/// prompt/completion format that `safetune train` reads.
public struct CorpusRecord: Codable, Equatable, Sendable {
    /// What the example teaches, which decides how evaluation judges it.
    public enum Kind: String, Codable, Sendable {
        /// A harmful request answered with a refusal.
        case harmful
        /// A harmless request answered without refusing.
        case harmless
        /// A skill task whose answer can be checked.
        case skill
        /// A harmful request answered with compliance: poison for harmful fine-tuning attacks.
        case attack
        /// A harmful request answered the way a harmless one is: what the guard's answer
        /// probes must recognise, read but never trained on as text (`train_answers: false`).
        case compliance
    }

    public var prompt: String
    public var completion: String
    /// SA-ESS label: "malicious" for harmful prompts, "benign" otherwise.
    public var label: String
    public var kind: Kind
    /// Skill family (e.g. "add", "capital"); nil for harmful and harmless prompts.
    public var task: String?
    /// The string a correct answer must contain (skills only).
    public var answer: String?
    /// An affirmative opening ("Sure, here is ...") for prefilling attacks (AdvBench prompts only).
    public var prefill: String?

    public init(prompt: String, completion: String, kind: Kind, task: String? = nil, answer: String? = nil, prefill: String? = nil) {
        self.prompt = prompt
        self.completion = completion
        self.label = kind == .harmful || kind == .attack || kind == .compliance ? "malicious" : "benign"
        self.kind = kind
        self.task = task
        self.answer = answer
        self.prefill = prefill
    }
}
