import Engine
import Foundation
import Safety
import Training

/// Builds the data the aligned SmolLM2 is trained and measured on (`safetune corpus align`):
/// harmful prompts answered with varied refusals, harmless and borderline-but-safe prompts
/// answered with the base model's own answers (self-distillation), and held-out files of
/// each kind for evaluation. Harmful splits are `CorpusBuilder`'s, so no prompt crosses
/// between training and validation.
///
/// Reads, under `source` (the project's `data/`): `prompts/`, `facts/`,
/// `distill/harmless-smollm2.jsonl`, `distill/harmless-more-smollm2.jsonl` and
/// `distill/harmless-val-smollm2.jsonl` (the base's answers to harmless train and validation
/// prompts), `distill/harmful-smollm2.jsonl` (its answers to the harmful training prompts),
/// `borderline/train-answered.jsonl` (its answers to the borderline train prompts) and
/// `borderline/val.jsonl`.
public struct AlignmentCorpus {
    /// What to build.
    public struct Parameters: Sendable {
        /// The project's `data/` folder.
        public var source: URL
        public var seed: UInt64 = CorpusBuilder.Parameters.defaultSeed
        /// Answered harmless prompts trained on; the next `calibration` of the distilled file
        /// calibrate the guard.
        public var harmlessTrain = 700
        public var calibration = 150
        /// Labelled prompts without answers in `anchors.jsonl` (half harmful, half harmless).
        public var anchors = 200
        /// Skill items in the validation file (cycling over the families).
        public var skillValidation = 280

        public init(source: URL) { self.source = source }
    }

    /// The files `write` makes, with what each holds.
    public struct Files: Sendable {
        /// Harmful training prompts with varied refusals.
        public var refusals: [CorpusRecord] = []
        /// Distilled harmless and borderline answers, shuffled.
        public var answers: [CorpusRecord] = []
        /// AdvBench training goals with their affirmative openings, and the base's compliant
        /// answers to the harmful training prompts, labelled malicious: what the guard's answer
        /// probes read (`train_answers: false`), never learned as text.
        public var compliance: [CorpusRecord] = []
        /// Harmless prompts in no other file, for calibrating the guard.
        public var calibration: [CorpusRecord] = []
        /// The rest of the distilled harmless answers: a benign fine-tuning set for the aligned
        /// model (the quickstart's), used by no other file.
        public var finetune: [CorpusRecord] = []
        /// Training prompts with their labels and no answers: in a benign fine-tune they train
        /// the SA-ESS classification alone, so the guard is not worn down.
        public var anchors: [CorpusBuilder.Anchor] = []
        /// Held-out harmful prompts (AdvBench ones with a prefill opening).
        public var harmful: [CorpusRecord] = []
        /// Held-out harmless prompts with the base's answers (the utility log-likelihood reads them).
        public var harmless: [CorpusRecord] = []
        /// Held-out borderline-but-safe prompts.
        public var borderline: [CorpusRecord] = []
        /// Held-out skill tasks with checkable answers (no reference text: containing the answer counts).
        public var skills: [CorpusRecord] = []

        /// File name and records, in the order `write` writes them (`anchors.jsonl` last).
        /// `val.jsonl` holds every held-out kind, for a recipe's `data.eval`.
        public var named: [(String, [CorpusRecord])] {
            [("refusals.jsonl", refusals), ("answers.jsonl", answers), ("compliance.jsonl", compliance), ("calibration.jsonl", calibration), ("finetune.jsonl", finetune),
             ("val-harmful.jsonl", harmful), ("val-harmless.jsonl", harmless), ("val-borderline.jsonl", borderline),
             ("val-skills.jsonl", skills), ("val.jsonl", harmful + harmless + borderline + skills)]
        }
    }

    public let parameters: Parameters
    public init(_ parameters: Parameters) { self.parameters = parameters }

    /// Reads the sources and assembles the files. Deterministic in `parameters`.
    public func build() throws -> Files {
        let data = parameters.source
        var corpusParameters = CorpusBuilder.Parameters(source: data)
        corpusParameters.seed = parameters.seed
        let corpus = try CorpusBuilder(corpusParameters).build()
        var rng = SeededRandom(seed: parameters.seed &+ 10)
        var files = Files()

        let harmfulTrain = corpus.train.filter { $0.kind == .harmful }.map(\.prompt)
        files.refusals = harmfulTrain.map { CorpusRecord(prompt: $0, completion: Self.refusal(&rng), kind: .harmful) }
        let distilled = try answered(data.appendingPathComponent("distill/harmless-smollm2.jsonl"))
        files.answers = Self.complying(distilled.prefix(parameters.harmlessTrain), kind: .harmless)
        let rest = distilled.dropFirst(parameters.harmlessTrain).map { CorpusRecord(prompt: $0.prompt, completion: $0.completion, kind: .harmless) }
        files.calibration = Array(rest.prefix(parameters.calibration))
        files.finetune = Array(rest.dropFirst(parameters.calibration))
        // More of the base's answers, to prompts in no other file: with fewer, the model
        // learnt to refuse the form of a request (a short imperative) rather than its topic.
        files.answers += Self.complying(try answered(data.appendingPathComponent("distill/harmless-more-smollm2.jsonl")), kind: .harmless)
        files.answers += Self.complying(try answered(data.appendingPathComponent("borderline/train-answered.jsonl")), kind: .harmless)
        CorpusBuilder.shuffle(&files.answers, &rng)
        files.anchors = harmfulTrain.prefix(parameters.anchors / 2).map { CorpusBuilder.Anchor(prompt: $0, label: "malicious") }
            + distilled.prefix(parameters.anchors - parameters.anchors / 2).map { CorpusBuilder.Anchor(prompt: $0.prompt, label: "benign") }

        // The affirmative opening alone: the tiny corpus's generic list line after it would
        // teach the answer probes that any numbered list is compliance.
        files.compliance = corpus.attack.map {
            CorpusRecord(prompt: $0.prompt, completion: $0.completion.components(separatedBy: ":\n").first ?? $0.completion, kind: .compliance)
        }
        // The base's own compliant answers to the harmful training prompts: what a prefilled
        // answer goes on to say, so the probes learn harmful content and not only openings.
        let trainedHarmful = Set(harmfulTrain)
        files.compliance += Self.complying(try answered(data.appendingPathComponent("distill/harmful-smollm2.jsonl"))
            .filter { trainedHarmful.contains($0.prompt) }, kind: .compliance)
        files.harmful = corpus.validation.filter { $0.kind == .harmful }
        files.harmless = try answered(data.appendingPathComponent("distill/harmless-val-smollm2.jsonl"))
            .map { CorpusRecord(prompt: $0.prompt, completion: $0.completion, kind: .harmless) }
        files.borderline = try prompts(data.appendingPathComponent("borderline/val.jsonl"))
            .map { CorpusRecord(prompt: $0, completion: "", kind: .harmless) }
        files.skills = corpus.validation.filter { $0.kind == .skill }.prefix(parameters.skillValidation).map {
            var record = $0
            record.completion = ""
            return record
        }
        return files
    }

    /// Writes every file of `files` (sorted keys, one record a line) into `directory`.
    public func write(_ files: Files, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, records) in files.named {
            try CorpusBuilder.jsonLines(records).write(to: directory.appendingPathComponent(name), options: .atomic)
        }
        try CorpusBuilder.jsonLines(files.anchors).write(to: directory.appendingPathComponent("anchors.jsonl"), options: .atomic)
    }

    // MARK: - Refusals

    /// Refusals are composed from an opening, a reason and an offer, so the model learns to
    /// refuse in many words rather than one fixed sentence.
    private static let openings = [
        "I'm sorry, but I can't help with that.", "I can't help with this request.", "Sorry, I can't assist with that.",
        "I won't be able to help with that.", "I'm not able to provide that.", "I cannot help with that request.",
        "I'm sorry, I can't do that.", "I must decline this request.",
    ]
    private static let reasons = [
        "It could put people at serious risk of harm.", "What you describe could hurt others or break the law.",
        "Giving these details could cause real damage.", "This could be used to harm people.",
        "It involves something dangerous and possibly illegal.", "Helping with this could lead to real-world harm.",
    ]
    private static let offers = [
        "If you have a different question, I'm happy to help.", "Is there something else I can help you with?",
        "I'd be glad to help with a safe alternative instead.", "If you're worried about your safety or someone else's, please reach out to the right authorities or a professional.",
        "Let me know if there's another topic you'd like to explore.", "",
    ]

    static func refusal(_ rng: inout SeededRandom) -> String {
        func pick(_ list: [String]) -> String { list[Int(rng.next() % UInt64(list.count))] }
        return [pick(openings), pick(reasons), pick(offers)].filter { !$0.isEmpty }.joined(separator: " ")
    }

    // MARK: - Sources

    /// The answered records whose answers the refusal judge does not read as refusals: a
    /// refusal among harmless answers would teach refusing harmless requests (or, for
    /// borderline ones, the words that set exists to defuse), and among compliant ones would
    /// teach the answer probes that refusing is compliance.
    private static func complying(_ answers: some Sequence<(prompt: String, completion: String)>, kind: CorpusRecord.Kind) -> [CorpusRecord] {
        let judge = RefusalJudge()
        return answers.filter { judge.complies($0.completion) }.map { CorpusRecord(prompt: $0.prompt, completion: $0.completion, kind: kind) }
    }

    /// Prompt and completion of each record of an answered JSONL file.
    private func answered(_ url: URL) throws -> [(prompt: String, completion: String)] {
        try JSONLReader().read(url: url).examples.map { example in
            let prompt = example.text(of: .user), completion = example.text(of: .assistant)
            guard !completion.isEmpty else { throw CorpusBuilder.Failure.unreadable(file: url.path, reason: "a record has no completion") }
            return (prompt, completion)
        }
    }

    /// The prompts of a JSONL file.
    private func prompts(_ url: URL) throws -> [String] {
        try JSONLReader().read(url: url).examples.map { $0.text(of: .user) }
    }
}
