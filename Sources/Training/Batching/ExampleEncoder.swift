import Models
import Tokenizers

/// Turns `Example`s into token ids with loss masks: conversations are rendered with the
/// chat template and only assistant turns (and raw text) are trained on.
public struct ExampleEncoder: Sendable {
    public let tokenizer: Tokenizer
    public let template: ChatTemplate

    public init(tokenizer: Tokenizer, template: ChatTemplate) {
        self.tokenizer = tokenizer
        self.template = template
    }

    /// Encodes one example. Token boundaries come from encoding each rendered prefix and
    /// taking the common prefix with the full encoding, so a token spanning a turn boundary
    /// belongs to the later turn, as `ChatTemplate.encode` does.
    public func encode(_ example: Example) -> EncodedExample {
        let safetyClass = example.label.map { Int32($0.classIndex) }
        if example.segments.allSatisfy({ $0.role == .text }) {
            let text = example.segments.map(\.text).joined()
            // Raw text is trained on throughout.
            let ids = tokenizer.encode(text).map(Int32.init)
            return EncodedExample(ids: ids, labels: ids, safetyClass: safetyClass, promptLength: 0, weight: example.weight)
        }
        var messages: [ChatMessage] = []
        var trainedMessage: [Bool] = []
        for segment in example.segments {
            let role: ChatMessage.Role
            switch segment.role {
            case .system: role = .system
            case .user, .text: role = .user
            case .assistant: role = .assistant
            }
            messages.append(ChatMessage(role: role, content: segment.text))
            trainedMessage.append(segment.trainable && segment.role == .assistant)
        }
        let full = tokenizer.encode(template.render(messages)).map(Int32.init)
        var labels = [Int32](repeating: -100, count: full.count)
        var promptLength = full.count
        // Boundary before message i: the prompt for the assistant's turn when it answers,
        // otherwise the plain rendering of the messages before it. The prompt ends where the
        // first answer begins, trained on or not (an untrained answer is still an answer for
        // the SA-ESS layout).
        for i in messages.indices where messages[i].role == .assistant {
            let begin = boundary(Array(messages[..<i]), next: messages[i], full: full)
            promptLength = min(promptLength, begin)
            guard trainedMessage[i] else { continue }
            let end = i + 1 == messages.count ? full.count : boundary(Array(messages[...i]), next: messages[i + 1], full: full)
            for t in begin..<max(begin, end) { labels[t] = full[t] }
        }
        return EncodedExample(ids: full, labels: labels, safetyClass: safetyClass, promptLength: promptLength,
                              weight: example.weight)
    }

    /// Number of leading tokens of `full` produced by `messages` alone (with the generation
    /// prompt when the next message is the assistant's).
    private func boundary(_ messages: [ChatMessage], next: ChatMessage, full: [Int32]) -> Int {
        if messages.isEmpty { return 0 }
        let text = template.render(messages, addGenerationPrompt: next.role == .assistant)
        let ids = tokenizer.encode(text)
        var n = 0
        while n < min(ids.count, full.count), Int32(ids[n]) == full[n] { n += 1 }
        return n
    }
}
