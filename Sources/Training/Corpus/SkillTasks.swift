import Engine

/// Generators for skill tasks with checkable answers (arithmetic, string manipulation,
/// facts from a shipped table), so a small model's utility is a number, not an opinion.
///
/// Each generator is split deterministically into train and validation items that
/// share no operand pair or word: validation measures skill, not recall.
struct SkillTasks {
    let words: [String]
    let capitals: [(country: String, capital: String)]

    /// True when an (a, b) operand pair belongs to the validation split.
    private static func heldOut(_ a: Int, _ b: Int) -> Bool { (a * 31 + b * 17) % 10 == 0 }
    private func heldOut(_ word: String) -> Bool { word.unicodeScalars.reduce(0) { $0 &* 31 &+ Int($1.value) } % 10 == 0 }

    /// `count` records of the given split, cycling over the task families.
    func make(count: Int, validation: Bool, rng: inout SeededRandom) -> [CorpusRecord] {
        let trainWords = words.filter { heldOut($0) == validation }
        var out: [CorpusRecord] = []
        out.reserveCapacity(count)
        let families = 7
        for i in 0..<count {
            switch i % families {
            case 0:
                let (a, b) = operands(validation, &rng)
                out.append(pick(["What is \(a) + \(b)?", "Add \(a) and \(b).", "Compute \(a) plus \(b)."], &rng,
                                completion: "\(a) + \(b) = \(a + b).", task: "add", answer: "\(a + b)"))
            case 1:
                let (x, y) = operands(validation, &rng)
                let (a, b) = (max(x, y), min(x, y))
                out.append(pick(["What is \(a) - \(b)?", "Subtract \(b) from \(a).", "Compute \(a) minus \(b)."], &rng,
                                completion: "\(a) - \(b) = \(a - b).", task: "subtract", answer: "\(a - b)"))
            case 2:
                let (a, b) = operands(validation, &rng)
                if a == b { out.append(pick(["Which is larger, \(a) or \(b + 1)?"], &rng, completion: "\(b + 1) is larger.", task: "compare", answer: "\(b + 1)")); continue }
                out.append(pick(["Which is larger, \(a) or \(b)?", "Which number is bigger: \(a) or \(b)?"], &rng,
                                completion: "\(max(a, b)) is larger.", task: "compare", answer: "\(max(a, b))"))
            case 3:
                let w = trainWords[Int(rng.next() % UInt64(trainWords.count))]
                let r = String(w.reversed())
                out.append(pick(["Reverse the word \"\(w)\".", "Spell \"\(w)\" backwards."], &rng,
                                completion: "\"\(w)\" reversed is \"\(r)\".", task: "reverse", answer: r))
            case 4:
                let w = trainWords[Int(rng.next() % UInt64(trainWords.count))]
                out.append(pick(["Write \"\(w)\" in capital letters.", "Convert \"\(w)\" to uppercase."], &rng,
                                completion: "\(w.uppercased())", task: "uppercase", answer: w.uppercased()))
            case 5:
                let w = trainWords[Int(rng.next() % UInt64(trainWords.count))]
                out.append(pick(["How many letters are in the word \"\(w)\"?", "Count the letters in \"\(w)\"."], &rng,
                                completion: "\"\(w)\" has \(w.count) letters.", task: "count", answer: "\(w.count)"))
            default:
                let (country, capital) = capitals[Int(rng.next() % UInt64(capitals.count))]
                // Facts are the same in both splits; validation asks with phrasings never trained on.
                let prompts = validation
                    ? ["Name the capital city of \(country).", "Which city is the capital of \(country)?"]
                    : ["What is the capital of \(country)?", "What city is \(country)'s capital?", "Tell me the capital of \(country)."]
                out.append(pick(prompts, &rng, completion: "The capital of \(country) is \(capital).", task: "capital", answer: capital))
            }
        }
        return out
    }

    private func operands(_ validation: Bool, _ rng: inout SeededRandom) -> (Int, Int) {
        while true {
            let a = Int(rng.next() % 100), b = Int(rng.next() % 100)
            if SkillTasks.heldOut(a, b) == validation { return (a, b) }
        }
    }

    private func pick(_ prompts: [String], _ rng: inout SeededRandom, completion: String, task: String, answer: String) -> CorpusRecord {
        CorpusRecord(prompt: prompts[Int(rng.next() % UInt64(prompts.count))], completion: completion,
                     kind: .skill, task: task, answer: answer)
    }
}
