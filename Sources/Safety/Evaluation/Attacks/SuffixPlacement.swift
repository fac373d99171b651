/// A token suffix appended to an instruction, placed in the prompt as the model sees it.
///
/// The chat template re-tokenises the suffix text, so the suffix's tokens are read back
/// from the prompt ids (the span where the ids with and without the suffix differ), and
/// the whole sequence is cut to the model's context from the left.
struct SuffixPlacement {
    /// Prompt ids (then `target`, when one was given), cut to the context.
    let ids: [Int]
    /// Where the target tokens lie in `ids` (empty without a target).
    let target: Range<Int>
    /// Where the suffix's tokens lie in `ids`.
    let suffix: Range<Int>

    /// The suffix as text after the instruction, separated by a space (tokens read back
    /// from a prompt already carry theirs).
    static func text(_ suffix: [Int], evaluator: Evaluator) -> String {
        let text = evaluator.tokenizer.decode(suffix)
        return text.first?.isWhitespace == true ? text : " " + text
    }

    /// A placement given directly.
    init(ids: [Int], target: Range<Int>, suffix: Range<Int>) {
        self.ids = ids
        self.target = target
        self.suffix = suffix
    }

    /// `instruction` + `suffix` through `evaluator`'s template, followed by `target`.
    init(_ instruction: String, suffix: [Int], target: [Int] = [], evaluator: Evaluator) {
        let without = evaluator.promptIds(instruction)
        let with = evaluator.promptIds(instruction, suffix: Self.text(suffix, evaluator: evaluator))
        let head = zip(without, with).prefix { $0 == $1 }.count
        let tail = min(zip(without.reversed(), with.reversed()).prefix { $0 == $1 }.count, without.count - head)
        let all = with + target
        let cut = max(0, all.count - evaluator.model.config.maxPositions)
        let start = max(head - cut, 0), end = max(with.count - tail - cut, start)
        ids = Array(all[cut...])
        self.target = (with.count - cut)..<(all.count - cut)
        self.suffix = start..<end
    }

    /// The suffix's tokens as placed.
    var suffixTokens: [Int] { Array(ids[suffix]) }
}
