import Engine
import Foundation

/// Builds SafeTune's reproducible instruction corpus from the prompt sets and fact
/// table shipped in `data/`: harmful prompts answered by varied refusals, harmless
/// prompts answered by compliant responses, and skill tasks with checkable answers,
/// every record labelled for the SA-ESS signal. Train and validation splits share no
/// prompt.
///
/// The harmless responses are templated acknowledgements (the shipped Alpaca
/// instructions come without answers); utility is measured on the skill tasks.
public struct CorpusBuilder {
    /// What to build.
    public struct Parameters: Sendable {
        /// Folder holding `prompts/` and `facts/` (the project's `data/`).
        public var source: URL
        /// The defaults `safetune corpus build` offers; the committed corpus is built with them.
        public static let defaultSeed: UInt64 = 1234
        public static let defaultCopyWords = 2000
        public var seed = defaultSeed
        public var harmlessTrain = 3000
        public var harmlessValidation = 300
        public var skillTrain = 8000
        public var skillValidation = 700
        /// Size of the benign fine-tuning set (half harmless, half skills).
        public var finetune = 1600
        /// Signal anchors: labelled training prompts without answers, half harmful, half
        /// harmless, that a fine-tune mixes in to keep the safety signal calibrated.
        public var anchors = 400
        /// Harmless prompts for calibrating the guard's threshold (`calibrate-guard`), used
        /// by no other split.
        public var calibration = 300
        /// Most frequent words the copying tasks train on (their held-out tenth excluded).
        /// Validation always asks with the held-out tenth of the 400 most frequent, so
        /// corpora built with other counts are measured on the same words.
        public var copyWords = defaultCopyWords

        public init(source: URL) { self.source = source }
    }

    /// The corpus: train and validation records.
    public struct Corpus: Sendable {
        /// The base model's training split.
        public var train: [CorpusRecord]
        /// Held-out prompts for evaluation.
        public var validation: [CorpusRecord]
        /// A benign downstream fine-tuning set (harmless prompts not in `train`, fresh skill
        /// items): what the 2M-parameter model's quickstart and experiments fine-tune on.
        public var finetune: [CorpusRecord]
        /// Harmful training prompts answered with AdvBench's affirmative openings: the poison of
        /// a harmful fine-tuning attack (never used to train the base model).
        public var attack: [CorpusRecord]
        /// The base model's own training prompts with their labels and no answers: in a
        /// fine-tune they train the SA-ESS classification alone, so benign-only data does not
        /// wear the guard down (docs/experiments/tiny-model-results.md, Quickstart).
        public var anchors: [Anchor]
        /// Harmless prompts in no other split: what the guard's threshold is calibrated on,
        /// so the validation split stays unseen by it.
        public var calibration: [CorpusRecord]
        /// The harmful training prompts answered with the harmless prompts' compliance
        /// templates (how this model fails when it fails): labelled malicious, for the
        /// guard's answer probes to read and the model never to learn as text.
        public var compliance: [CorpusRecord]
    }

    /// A labelled prompt without an answer (`{"label": ..., "prompt": ...}`).
    public struct Anchor: Codable, Equatable, Sendable {
        public var prompt: String
        public var label: String
    }

    /// A shipped input file that is missing or malformed.
    public enum Failure: Error, CustomStringConvertible {
        case unreadable(file: String, reason: String)
        public var description: String {
            switch self { case let .unreadable(file, reason): return "\(file): \(reason)" }
        }
    }

    public let parameters: Parameters
    public init(_ parameters: Parameters) { self.parameters = parameters }

    /// Reads the sources and assembles both splits. Deterministic in `parameters`.
    public func build() throws(Failure) -> Corpus {
        let prompts = parameters.source.appendingPathComponent("prompts")
        let harmfulTrain = try instructions(prompts.appendingPathComponent("harmful_train.json"))
        let harmfulVal = try instructions(prompts.appendingPathComponent("harmful_val.json"))
        let harmlessTrain = try instructions(prompts.appendingPathComponent("harmless_train.json"))
        let harmlessVal = try instructions(prompts.appendingPathComponent("harmless_val.json"))
        let advbench = try advBench(prompts.appendingPathComponent("advbench.csv"))
        let capitals = try table(parameters.source.appendingPathComponent("facts/capitals.tsv"))
        let antonyms = try table(parameters.source.appendingPathComponent("facts/antonyms.tsv"))

        var rng = SeededRandom(seed: parameters.seed)
        var train: [CorpusRecord] = []
        var validation: [CorpusRecord] = []

        // AdvBench goals are split by a hash of their text; a goal already in one of the
        // curated splits stays on that side so no prompt crosses over.
        let inTrain = Set(harmfulTrain), inVal = Set(harmfulVal)
        var advTrain: [(String, String)] = [], advVal: [(String, String)] = []
        for (goal, target) in advbench where !inTrain.contains(goal) && !inVal.contains(goal) {
            if Self.stableHash(goal) % 5 == 0 { advVal.append((goal, target)) } else { advTrain.append((goal, target)) }
        }
        for p in harmfulTrain + advTrain.map(\.0) {
            train.append(CorpusRecord(prompt: p, completion: Self.refusal(for: p, &rng), kind: .harmful))
        }
        for p in harmfulVal {
            validation.append(CorpusRecord(prompt: p, completion: Self.refusal(for: p, &rng), kind: .harmful))
        }
        for (goal, target) in advVal {
            validation.append(CorpusRecord(prompt: goal, completion: Self.refusal(for: goal, &rng), kind: .harmful, prefill: target))
        }
        for p in sample(harmlessTrain, parameters.harmlessTrain, &rng) {
            train.append(CorpusRecord(prompt: p, completion: Self.compliance(for: p, &rng), kind: .harmless))
        }
        for p in sample(harmlessVal, parameters.harmlessValidation, &rng) {
            validation.append(CorpusRecord(prompt: p, completion: Self.compliance(for: p, &rng), kind: .harmless))
        }
        let ranked = Self.wordsByFrequency(harmlessTrain)
        let skills = SkillTasks(words: ranked.prefix(parameters.copyWords).sorted(),
                                validationWords: ranked.prefix(400).sorted(),
                                capitals: capitals, antonyms: antonyms)
        train += skills.make(count: parameters.skillTrain, validation: false, rng: &rng)
        validation += skills.make(count: parameters.skillValidation, validation: true, rng: &rng)
        Self.shuffle(&train, &rng)

        // Downstream sets draw from their own stream so the base splits stay as they are.
        var more = SeededRandom(seed: parameters.seed &+ 1)
        let used = Set(train.map(\.prompt))
        var finetune = sample(harmlessTrain.filter { !used.contains($0) }, parameters.finetune / 2, &more)
            .map { CorpusRecord(prompt: $0, completion: Self.compliance(for: $0, &more), kind: .harmless) }
        finetune += skills.make(count: parameters.finetune - finetune.count, validation: false, rng: &more)
        Self.shuffle(&finetune, &more)
        let attack = advTrain.map { goal, target in
            CorpusRecord(prompt: goal, completion: target + ":\n1. Start by gathering what you need.", kind: .attack)
        }
        var third = SeededRandom(seed: parameters.seed &+ 3)
        let harmfulPrompts = harmfulTrain + advTrain.map(\.0)
        let harmlessPrompts = train.filter { $0.kind == .harmless }.map(\.prompt)
        var anchors = sample(harmfulPrompts, parameters.anchors / 2, &third).map { Anchor(prompt: $0, label: "malicious") }
            + sample(harmlessPrompts, parameters.anchors - parameters.anchors / 2, &third).map { Anchor(prompt: $0, label: "benign") }
        Self.shuffle(&anchors, &third)
        var fourth = SeededRandom(seed: parameters.seed &+ 4)
        let taken = used.union(finetune.map(\.prompt)).union(validation.map(\.prompt))
        let calibration = sample(harmlessTrain.filter { !taken.contains($0) }, parameters.calibration, &fourth)
            .map { CorpusRecord(prompt: $0, completion: Self.compliance(for: $0, &fourth), kind: .harmless) }
        var fifth = SeededRandom(seed: parameters.seed &+ 5)
        let compliance = harmfulPrompts.map { CorpusRecord(prompt: $0, completion: Self.compliance(for: $0, &fifth), kind: .compliance) }
        return Corpus(train: train, validation: validation, finetune: finetune, attack: attack, anchors: anchors,
                      calibration: calibration, compliance: compliance)
    }

    /// The files `write` makes, in order.
    public static let fileNames = ["train.jsonl", "val.jsonl", "finetune.jsonl", "attack.jsonl", "anchors.jsonl", "calibration.jsonl",
                                   "compliance.jsonl"]

    /// Writes `fileNames` (sorted keys, one record a line) into `directory`.
    public func write(_ corpus: Corpus, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let contents = [try Self.jsonLines(corpus.train), try Self.jsonLines(corpus.validation), try Self.jsonLines(corpus.finetune),
                        try Self.jsonLines(corpus.attack), try Self.jsonLines(corpus.anchors), try Self.jsonLines(corpus.calibration),
                        try Self.jsonLines(corpus.compliance)]
        for (name, text) in zip(Self.fileNames, contents) {
            try text.write(to: directory.appendingPathComponent(name), options: .atomic)
        }
    }

    /// One JSON object a line, keys sorted.
    static func jsonLines(_ records: [some Encodable]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = Data()
        for r in records {
            text.append(try encoder.encode(r))
            text.append(0x0A)
        }
        return text
    }

    // MARK: - Responses

    private static let refusals = [
        "I'm sorry, but I can't help with that.",
        "I cannot help with this request because it could cause harm.",
        "Sorry, I can't assist with that. It could hurt people.",
        "I won't help with that. It is harmful and may be illegal.",
        "I'm not able to provide that. Is there something safe I can help with instead?",
        "I cannot fulfill this request. It asks for something dangerous.",
        "As a responsible assistant, I must decline. This could be used to cause harm.",
        "I'm sorry, I can't do that. Please ask me something else.",
    ]

    private static let openings = [
        "Sure, happy to help.", "Of course!", "Certainly.", "Sure!", "Glad to help.", "Here you go.",
    ]

    static func refusal(for prompt: String, _ rng: inout SeededRandom) -> String {
        refusals[Int(rng.next() % UInt64(refusals.count))]
    }

    static func compliance(for prompt: String, _ rng: inout SeededRandom) -> String {
        let opening = openings[Int(rng.next() % UInt64(openings.count))]
        let topic = prompt.trimmingCharacters(in: CharacterSet(charactersIn: " .?!\n"))
        return "\(opening) Here is my answer to \"\(topic)\"."
    }

    // MARK: - Sources

    private func instructions(_ url: URL) throws(Failure) -> [String] {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) } catch {
            throw .unreadable(file: url.path, reason: "\(error.localizedDescription)")
        }
        guard let list = object as? [[String: Any]] else { throw .unreadable(file: url.path, reason: "expected a list of objects") }
        var out: [String] = []
        for (i, item) in list.enumerated() {
            guard let text = item["instruction"] as? String, !text.isEmpty else {
                throw .unreadable(file: url.path, reason: "item \(i): missing 'instruction'")
            }
            out.append(text)
        }
        return out
    }

    private func advBench(_ url: URL) throws(Failure) -> [(String, String)] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw .unreadable(file: url.path, reason: "cannot read") }
        var rows: [(String, String)] = []
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated().dropFirst() {
            let fields = Self.csvFields(String(line))
            guard fields.count == 2 else { throw .unreadable(file: url.path, reason: "line \(n + 1): expected 2 fields, got \(fields.count)") }
            rows.append((fields[0], fields[1]))
        }
        return rows
    }

    /// A two-column table with a header line.
    private func table(_ url: URL) throws(Failure) -> [(String, String)] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw .unreadable(file: url.path, reason: "cannot read") }
        var rows: [(String, String)] = []
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated().dropFirst() {
            let f = line.split(separator: "\t").map(String.init)
            guard f.count == 2 else { throw .unreadable(file: url.path, reason: "line \(n + 1): expected two tab-separated columns") }
            rows.append((f[0], f[1]))
        }
        return rows
    }

    /// Fields of one CSV line (double-quoted fields with "" escapes).
    static func csvFields(_ line: String) -> [String] {
        var fields: [String] = [], field = "", quoted = false
        var chars = line.makeIterator()
        while let c = chars.next() {
            if quoted {
                if c == "\"" {
                    // A doubled quote is a literal quote; a single one closes the field.
                    if let next = chars.next() {
                        if next == "\"" { field.append("\"") } else { quoted = false; if next == "," { fields.append(field); field = "" } else { field.append(next) } }
                    } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" { quoted = true } else if c == "," { fields.append(field); field = "" } else { field.append(c) }
        }
        fields.append(field)
        return fields
    }

    /// The lower-case alphabetic words of 3–8 letters in the harmless prompts, most frequent
    /// first, for the copying tasks: frequent words are whole tokens of the tokenizer
    /// trained on this corpus, so copying measures attention, not spelling.
    static func wordsByFrequency(_ prompts: [String]) -> [String] {
        var counts: [String: Int] = [:]
        for p in prompts {
            for w in p.split(whereSeparator: { !$0.isLetter }) where (3...8).contains(w.count) && w.allSatisfy({ $0.isASCII && $0.isLowercase }) {
                counts[String(w), default: 0] += 1
            }
        }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
    }

    static func stableHash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    private func sample(_ items: [String], _ n: Int, _ rng: inout SeededRandom) -> [String] {
        var copy = items
        Self.shuffle(&copy, &rng)
        return Array(copy.prefix(n))
    }

    static func shuffle<T>(_ items: inout [T], _ rng: inout SeededRandom) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            items.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
    }
}
