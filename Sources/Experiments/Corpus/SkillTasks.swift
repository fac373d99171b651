import Engine

/// Generators for skill tasks with checkable answers, so a small model's utility is a
/// number, not an opinion.
///
/// Two kinds of generalisation are measured, and the validation split is built for each:
/// - copying and ordering (`repeat`, `first`, `last`, `compare`): validation uses words or
///   number pairs that never occur in training;
/// - facts (`add` over single digits, `capital`, `opposite`, from the shipped tables):
///   every fact is trained, and validation asks with phrasings never trained on.
struct SkillTasks {
    /// Words the training copying tasks may use (held-out ones are dropped).
    let words: [String]
    /// Words whose held-out tenth the validation copying tasks use.
    let validationWords: [String]
    let capitals: [(String, String)]
    let antonyms: [(String, String)]

    static let families = ["add", "compare", "capital", "opposite", "repeat", "first", "last"]

    /// `count` records of the given split, cycling over the task families.
    func make(count: Int, validation: Bool, rng: inout SeededRandom) -> [CorpusRecord] {
        let pool = validation ? validationWords.filter { Self.heldOut($0) } : words.filter { !Self.heldOut($0) }
        func word() -> String { pool[Int(rng.next() % UInt64(pool.count))] }
        func choose(_ train: [String], _ val: [String]) -> String {
            let options = validation ? val : train
            return options[Int(rng.next() % UInt64(options.count))]
        }
        var out: [CorpusRecord] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            let prompt: String, completion: String, answer: String
            let family = Self.families[i % Self.families.count]
            switch family {
            case "add":
                let a = Int(rng.next() % 10), b = Int(rng.next() % 10)
                prompt = choose(["What is \(a) + \(b)?", "Add \(a) and \(b).", "Compute \(a) plus \(b).", "What is \(a) plus \(b)?",
                                 "Calculate \(a) + \(b).", "Find the sum of \(a) and \(b).", "\(a) + \(b) = ?",
                                 "What is the sum of \(a) and \(b)?", "Sum \(a) and \(b).", "Give the sum of \(a) and \(b).",
                                 "What does \(a) plus \(b) equal?", "Work out \(a) + \(b).", "Solve: \(a) + \(b)",
                                 "Tell me what \(a) + \(b) is.", "\(a) plus \(b)?"],
                                ["What do you get when you add \(a) to \(b)?", "How much is \(a) plus \(b)?"])
                (completion, answer) = ("\(a) + \(b) = \(a + b).", "\(a + b)")
            case "compare":
                var a = 0, b = 0
                repeat { a = Int(rng.next() % 21); b = Int(rng.next() % 21) } while a == b || Self.heldOut(a, b) != validation
                prompt = choose(["Which is larger, \(a) or \(b)?", "Which number is bigger: \(a) or \(b)?",
                                 "Which is greater, \(a) or \(b)?", "Pick the larger number: \(a) or \(b)."],
                                ["Which is larger, \(a) or \(b)?", "Which number is bigger: \(a) or \(b)?"])
                (completion, answer) = ("\(max(a, b)) is larger.", "\(max(a, b))")
            case "capital":
                let (country, capital) = capitals[Int(rng.next() % UInt64(capitals.count))]
                prompt = choose(["What is the capital of \(country)?", "Tell me the capital of \(country).",
                                 "What city is the capital of \(country)?", "Capital of \(country)?",
                                 "Do you know the capital of \(country)?", "Which city is \(country)'s capital?",
                                 "What's the capital of \(country)?", "Give the capital of \(country).",
                                 "What is \(country)'s capital city?", "The capital of \(country) is?",
                                 "Say the capital of \(country).", "In \(country), what is the capital?"],
                                ["Name the capital city of \(country).", "Which city is the capital of \(country)?"])
                (completion, answer) = ("The capital of \(country) is \(capital).", capital)
            case "opposite":
                let (w, o) = antonyms[Int(rng.next() % UInt64(antonyms.count))]
                prompt = choose(["What is the opposite of \"\(w)\"?", "Give the antonym of \"\(w)\".",
                                 "What word means the opposite of \"\(w)\"?", "Opposite of \"\(w)\"?",
                                 "Tell me the opposite of \"\(w)\".", "What is an antonym for \"\(w)\"?",
                                 "Give the opposite of \"\(w)\".", "Antonym of \"\(w)\"?", "What's the opposite of \"\(w)\"?",
                                 "Say the opposite of \"\(w)\".", "Write the antonym of \"\(w)\".", "The opposite of \"\(w)\" is?"],
                                ["Which word means the opposite of \"\(w)\"?", "Name the opposite of \"\(w)\"."])
                (completion, answer) = ("The opposite of \"\(w)\" is \"\(o)\".", o)
            // Copying tasks: the word follows a space in the prompt and in the answer
            // sentence, so both use the same space-prefixed tokens. Without the space (quoted,
            // or at a line's start) a word splits into shorter, rarer fragments ("t" "able" for
            // "Ġtable"), which this project's small model copied far worse (docs/experiments/tiny-base-model.md).
            case "repeat":
                let w = word()
                prompt = choose(["Repeat the word \(w).", "Say \(w) again.", "Echo the word \(w).",
                                 "Write the word \(w) once more.", "Copy this word: \(w).", "Echo back the word \(w).",
                                 "Print the word \(w).", "Type the word \(w).", "Output the word \(w) and nothing else."],
                                ["Please repeat the word \(w).", "Say the word \(w)."])
                (completion, answer) = ("The word is \(w).", w)
            default:
                let list = [word(), word(), word()]
                let first = family == "first"
                let joined = list.joined(separator: ", ")
                let position = first ? "first" : "last"
                prompt = choose(["What is the \(position) word in: \(joined)?", "Give the \(position) word of: \(joined).",
                                 "Which word is \(position) in: \(joined)?", "\(position.capitalized) word of: \(joined)?",
                                 "Tell me the \(position) word in: \(joined).", "Return the \(position) word of: \(joined)."],
                                ["Which word comes \(position) in: \(joined)?"])
                let target = first ? list[0] : list[2]
                (completion, answer) = ("The \(position) word is \(target).", target)
            }
            out.append(CorpusRecord(prompt: prompt, completion: completion, kind: .skill, task: family, answer: answer))
        }
        return out
    }

    /// True when a number pair belongs to the validation split (order-independent).
    private static func heldOut(_ a: Int, _ b: Int) -> Bool { (min(a, b) * 31 + max(a, b) * 17) % 7 == 0 }

    /// True when a word belongs to the validation split.
    private static func heldOut(_ word: String) -> Bool {
        word.unicodeScalars.reduce(0) { ($0 &* 31 &+ Int($1.value)) & 0xFFFF_FFFF } % 10 == 0
    }
}
