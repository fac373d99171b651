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

    private enum CodingKeys: String, CodingKey { case prompt, completion, label, kind, task, answer, prefill }

    /// An empty completion is left out: a prompt to answer, not an answer to learn
    /// (training readers refuse an empty one).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(prompt, forKey: .prompt)
        if !completion.isEmpty { try c.encode(completion, forKey: .completion) }
        try c.encode(label, forKey: .label)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(task, forKey: .task)
        try c.encodeIfPresent(answer, forKey: .answer)
        try c.encodeIfPresent(prefill, forKey: .prefill)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        prompt = try c.decode(String.self, forKey: .prompt)
        completion = try c.decodeIfPresent(String.self, forKey: .completion) ?? ""
        label = try c.decode(String.self, forKey: .label)
        kind = try c.decode(Kind.self, forKey: .kind)
        task = try c.decodeIfPresent(String.self, forKey: .task)
        answer = try c.decodeIfPresent(String.self, forKey: .answer)
        prefill = try c.decodeIfPresent(String.self, forKey: .prefill)
    }
}
